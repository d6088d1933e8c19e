import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveLimits } from './limits.js';
import { Liveness, type Expiry } from './liveness.js';
import { REASON_V5 } from './reason-codes.js';

/** Waits for the timer `liveness` arms, for the deadline it was armed for. */
const fired = (liveness: Liveness): Promise<void> => new Promise((resolve) => liveness.arm(resolve, undefined));

/** As a connection does: on each firing, looks, and arms again until a deadline has passed. */
async function expiry(liveness: Liveness): Promise<Expiry> {
  for (;;) {
    await fired(liveness);
    const expired = liveness.expired();
    if (expired !== undefined) return { reason: expired.reason, code: expired.code };
  }
}

describe('Liveness', () => {
  test('before CONNACK only the connect timeout counts', async () => {
    const liveness = new Liveness(resolveLimits({ connectTimeoutMs: 5 }));
    assert.deepEqual(await expiry(liveness), { reason: 'connect timeout', code: REASON_V5.keepAliveTimeout });
  });

  test("a device silent past the idle limit expires; a backend has none, and meets the maximum connect time", async () => {
    const device = new Liveness(resolveLimits({ idleLimitMs: 5, maxConnectTimeMs: 3_600_000 }));
    device.activate(0, true);
    assert.deepEqual(await expiry(device), { reason: 'idle limit reached', code: REASON_V5.keepAliveTimeout });

    const backend = new Liveness(resolveLimits({ idleLimitMs: 5, maxConnectTimeMs: 20 }));
    backend.activate(0, false);
    assert.deepEqual(await expiry(backend), { reason: 'maximum connect time reached', code: REASON_V5.maximumConnectTime });
  });

  test('activity keeps it alive: nothing has expired right after a packet', () => {
    const liveness = new Liveness(resolveLimits({ idleLimitMs: 60_000 }));
    liveness.activate(60, true);
    liveness.touch();
    assert.equal(liveness.expired(), undefined);
    liveness.stop();
  });

  test("the session's end is taken once it is due, and only once", async () => {
    const liveness = new Liveness(resolveLimits());
    const onEnd = (): void => {};
    liveness.endAfter(3_600_000, () => {});
    assert.equal(liveness.takeDueEnd(), undefined, 'not due yet');
    liveness.endAfter(1, onEnd);
    let taken: (() => void) | undefined;
    while (taken === undefined) {
      await fired(liveness);
      taken = liveness.takeDueEnd();
    }
    assert.equal(taken, onEnd, 'the later end replaced the earlier');
    assert.equal(liveness.takeDueEnd(), undefined, 'taken once');
    liveness.stop();
  });
});
