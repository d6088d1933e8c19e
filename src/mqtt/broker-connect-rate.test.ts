/**
 * Connection rate limits over real TLS: the listener's rate refuses CONNECTs before any credential
 * is checked, and a backend client id that reconnects too often is refused while others are not.
 * MQTT 5 gets CONNACK 0x9F, MQTT 3.1.1 CONNACK 3. Devices' own connection limits are their
 * registry's (broker-rate-limits.test.ts).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { addDevice, connectBackend, connectDevice, refusedWith, startBroker, type Harness } from './broker-harness.test.js';

const RATE_EXCEEDED_V5 = 0x9f;
const SERVER_UNAVAILABLE_V4 = 3;

describe('connection rate limits', () => {
  const harnesses: Harness[] = [];
  const clients: MqttClient[] = [];
  after(async () => {
    for (const c of clients) c.end(true);
    for (const h of harnesses) await h.close();
  });

  test('a backend client id reconnecting too often is refused', async () => {
    const h = await startBroker({ identityConnectsPerMinute: 1 });
    harnesses.push(h);
    (await connectBackend(h, 'worker-1')).end(true);
    await assert.rejects(connectBackend(h, 'worker-1'), refusedWith(SERVER_UNAVAILABLE_V4));
    clients.push(await connectBackend(h, 'worker-2'));
  });

  test('CONNECTs beyond the listener rate are refused before authentication', async () => {
    const h = await startBroker({ connectsPerSecond: 1 });
    harnesses.push(h);
    const d = await addDevice(h, 'storm');
    clients.push(await connectDevice(h, d));
    // The bucket holds one token and refills one a second: of five CONNECTs at once, at most one
    // more (on a machine slow enough for a second to pass) gets through.
    const tries = await Promise.allSettled(
      Array.from({ length: 5 }, () => connectDevice(h, d, { protocolVersion: 5 })),
    );
    for (const t of tries) if (t.status === 'fulfilled') clients.push(t.value);
    const refused = tries.filter((t) => t.status === 'rejected');
    assert.ok(refused.length >= 4, `${refused.length} of 5 refused`);
    for (const t of refused) assert.ok(refusedWith(RATE_EXCEEDED_V5)(t.reason), `refused with 0x9F, not ${String(t.reason)}`);
  });
});
