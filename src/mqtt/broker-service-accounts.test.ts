/**
 * Backend subscribers with service identities: a service account logs in with `{project}/{id}`
 * and an API key, subscribes only where its bindings reach, receives only messages of the
 * registries it reaches (checked per delivery, since registry ids repeat across projects), and is
 * cut off within a second when its key is revoked or the account disabled, deleted or narrowed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { AuditEvent } from '../domain/audit-events.js';
import type { DeviceName, RegistryName } from '../domain/names.js';
import { BOOTSTRAP_ADMIN, type RoleBinding } from '../domain/roles.js';
import { signDeviceJwt } from '../identity/device-jwt.js';
import {
  LOCATION,
  PROJECT,
  REG,
  REGISTRY,
  addDevice,
  closed,
  connectDevice,
  eventually,
  inbox,
  keyPair,
  mqttConnect,
  refusedWith,
  sleep,
  startBroker,
  type Harness,
} from './broker-harness.test.js';

const OTHER_PROJECT = 'globex';
const OTHER_REG: RegistryName = { project: OTHER_PROJECT, location: LOCATION, registry: REGISTRY };
/** The SUBACK return codes (mqtt.js rejects a SUBACK holding a failure, with the packet). */
const subackCodes = (c: MqttClient, filters: string[]): Promise<number[]> =>
  c.subscribeAsync(filters).then(
    (granted) => granted.map((g) => g.qos),
    (e: { packet?: { granted?: number[] } }) => e.packet?.granted ?? [],
  );
const registryScope = (r: RegistryName) => ({ kind: 'registry', ...r }) as const;

describe('backend subscribers with service accounts', () => {
  let h: Harness;
  const audit: AuditEvent[] = [];
  const clients: MqttClient[] = [];
  const track = (c: MqttClient): MqttClient => {
    clients.push(c);
    return c;
  };
  let n = 0;

  before(async () => {
    h = await startBroker({}, undefined, { audit: { record: (e) => void audit.push(e) } });
    // Project B has a registry of the same id as project A's.
    await h.service.createRegistry(OTHER_REG, REGISTRY, {});
    await h.service.createRegistry(REG, 'secret', {});
  });
  after(async () => {
    for (const c of clients) c.end(true);
    await h.close();
  });

  /** A new account in PROJECT (or `project`) with the bindings, and one API key. */
  async function account(bindings: RoleBinding[], project = PROJECT): Promise<{ id: string; user: string; key: string; keyId: string }> {
    const id = `svc-${++n}`;
    await h.accounts.create(project, id, { bindings }, BOOTSTRAP_ADMIN);
    const created = await h.accounts.createKey(project, id);
    return { id, user: `${project}/${id}`, key: created.key, keyId: created.record.keyId };
  }

  const login = (a: { user: string; key: string }, extra: Record<string, unknown> = {}): Promise<MqttClient> =>
    mqttConnect(h.port, { clientId: `b-${++n}`, username: a.user, password: a.key, ...extra });

  async function otherProjectDevice(id: string) {
    const keys = keyPair();
    const name: DeviceName = { ...OTHER_REG, device: id };
    await h.service.createDevice(OTHER_REG, id, { credentials: [{ publicKey: { format: keys.format, key: keys.publicPem } }] });
    const clientId = `projects/${OTHER_PROJECT}/locations/${LOCATION}/registries/${REGISTRY}/devices/${id}`;
    return { name, client: await mqttConnect(h.port, { clientId, username: 'unused', password: await signDeviceJwt(keys.privatePem, { audience: OTHER_PROJECT }) }) };
  }

  test("a key reaching registry r of project A never receives project B's r, though the topics are the same", async () => {
    const a = await account([{ role: 'viewer', scope: registryScope(REG) }]);
    const backend = track(await login(a));
    const got = inbox(backend);
    await backend.subscribeAsync(`registries/${REGISTRY}/devices/+/events/#`, { qos: 1 });
    await backend.subscribeAsync('$share/workers/registries/+/devices/+/events', { qos: 1 });

    const mine = await addDevice(h, 'tenant-a');
    const ours = track(await connectDevice(h, mine));
    const theirs = await otherProjectDevice('tenant-b');
    track(theirs.client);
    await theirs.client.publishAsync('/devices/tenant-b/events', 'from B', { qos: 1 });
    await ours.publishAsync('/devices/tenant-a/events', 'from A', { qos: 1 });
    await eventually(() => assert.equal(got.length, 2, 'A’s event arrives through both subscriptions'));
    await sleep(200);
    assert.deepEqual(got.map((m) => m.payload.toString()), ['from A', 'from A'], 'nothing of project B');
  });

  test('a project-scoped account of project B gets B’s registry and never A’s, shared groups included', async () => {
    const b = await account([{ role: 'viewer', scope: { kind: 'project', project: OTHER_PROJECT } }], OTHER_PROJECT);
    const a = await account([{ role: 'viewer', scope: { kind: 'project', project: PROJECT } }]);
    // Both use the same shared group name: groups are per account, so neither takes the other's messages.
    const backendB = track(await login(b));
    const backendA = track(await login(a));
    const gotB = inbox(backendB);
    const gotA = inbox(backendA);
    await backendB.subscribeAsync('$share/g/registries/+/devices/+/events', { qos: 1 });
    await backendA.subscribeAsync('$share/g/registries/+/devices/+/events', { qos: 1 });
    const mine = await addDevice(h, 'tenant-a2');
    const ours = track(await connectDevice(h, mine));
    const theirs = await otherProjectDevice('tenant-b2');
    track(theirs.client);
    for (let i = 0; i < 4; i++) {
      await ours.publishAsync('/devices/tenant-a2/events', `A${i}`, { qos: 1 });
      await theirs.client.publishAsync('/devices/tenant-b2/events', `B${i}`, { qos: 1 });
    }
    await eventually(() => assert.equal(gotA.length + gotB.length, 8, 'every message reaches its own project’s account'));
    assert.deepEqual(gotA.map((m) => m.payload.toString()), ['A0', 'A1', 'A2', 'A3']);
    assert.deepEqual(gotB.map((m) => m.payload.toString()), ['B0', 'B1', 'B2', 'B3']);
  });

  test('SUBSCRIBE to a registry out of reach is refused: 0x80 on MQTT 3.1.1, 0x87 on MQTT 5', async () => {
    const a = await account([{ role: 'viewer', scope: registryScope(REG) }]);
    const v4 = track(await login(a));
    assert.deepEqual(await subackCodes(v4, ['registries/secret/#', `registries/${REGISTRY}/devices/+/state`]), [0x80, 0]);
    const v5 = track(await login(a, { protocolVersion: 5 }));
    assert.deepEqual(await subackCodes(v5, ['registries/secret/devices/+/events', 'registries/+/devices/+/events']), [0x87, 0]);
    await eventually(() =>
      assert.ok(
        audit.some((e) => e.kind === 'device.authorize' && e.outcome === 'denied' && e.actor === `backend:${a.user}` && e.subject === 'registries/secret/#'),
        'the refused subscribe is audited under the account',
      ),
    );
  });

  test('logins are refused for a wrong user name, an unknown or expired key, a disabled account, and one reaching no registry', async () => {
    const a = await account([{ role: 'viewer', scope: registryScope(REG) }]);
    const other = await account([{ role: 'viewer', scope: registryScope(REG) }]);
    await assert.rejects(login({ user: other.user, key: a.key }), refusedWith(5), 'the key of another account');
    await assert.rejects(login({ user: a.user, key: a.key.slice(0, -1) + (a.key.endsWith('A') ? 'B' : 'A') }), refusedWith(5), 'a wrong secret');
    await assert.rejects(login({ user: 'admin', key: a.key }), refusedWith(5), 'the old admin user');
    await assert.rejects(login({ user: a.user, key: a.key }, { protocolVersion: 5, username: a.user + 'x' }), refusedWith(0x86), 'MQTT 5: bad user name or password');
    const none = await account([]);
    await assert.rejects(login(none), refusedWith(5), 'an account that reaches no registry');
    const disabled = await account([{ role: 'viewer', scope: registryScope(REG) }]);
    await h.accounts.update(PROJECT, disabled.id, { disabled: true }, BOOTSTRAP_ADMIN);
    await assert.rejects(login(disabled), refusedWith(5), 'a disabled account');
    track(await login(a));
    await eventually(() => {
      const decisions = audit.filter((e) => e.kind === 'device.authenticate' && e.details?.account === a.user);
      assert.ok(decisions.some((e) => e.outcome === 'allowed' && e.details?.method === 'api-key'), 'the accepted login is audited');
      assert.ok(decisions.some((e) => e.outcome === 'denied' && /API key refused/.test(e.reason ?? '')), 'a refused login is audited with its reason');
    });
    assert.ok(!JSON.stringify(audit).includes(a.key), 'the key never reaches the audit log');
  });

  for (const [what, change] of [
    ['its key is revoked', async (a: { id: string; keyId: string }) => h.accounts.revokeKey(PROJECT, a.id, a.keyId)],
    ['the account is disabled', async (a: { id: string }) => void (await h.accounts.update(PROJECT, a.id, { disabled: true }, BOOTSTRAP_ADMIN))],
    ['the account is deleted', async (a: { id: string }) => h.accounts.delete(PROJECT, a.id)],
    ['its binding is removed', async (a: { id: string }) => void (await h.accounts.update(PROJECT, a.id, { bindings: [] }, BOOTSTRAP_ADMIN))],
  ] as const) {
    test(`a live backend connection ends within a second when ${what}`, async () => {
      const a = await account([{ role: 'viewer', scope: registryScope(REG) }]);
      const backend = track(await login(a, { clean: false }));
      await backend.subscribeAsync(`registries/${REGISTRY}/#`, { qos: 1 });
      const started = Date.now();
      await change(a);
      await closed(backend, 1000);
      assert.ok(Date.now() - started < 1000);
      await assert.rejects(login(a), refusedWith(5), 'and it cannot log in again');
    });
  }

  test('revoking one key leaves the account’s other keys connected', async () => {
    const a = await account([{ role: 'viewer', scope: registryScope(REG) }]);
    const second = await h.accounts.createKey(PROJECT, a.id);
    const first = track(await login(a));
    const other = track(await login({ user: a.user, key: second.key }));
    await h.accounts.revokeKey(PROJECT, a.id, a.keyId);
    await closed(first, 1000);
    await sleep(100);
    assert.equal(other.connected, true);
  });

  test('two accounts using one client id get separate sessions', async () => {
    const a = await account([{ role: 'viewer', scope: registryScope(REG) }]);
    const b = await account([{ role: 'viewer', scope: registryScope(OTHER_REG) }], OTHER_PROJECT);
    const first = track(await mqttConnect(h.port, { clientId: 'shared-id', username: a.user, password: a.key, clean: false }));
    await first.subscribeAsync(`registries/${REGISTRY}/#`, { qos: 1 });
    const second = track(await mqttConnect(h.port, { clientId: 'shared-id', username: b.user, password: b.key, clean: false }));
    assert.equal(first.connected, true, 'no take-over across accounts');
    // A fresh session: the other account's subscription did not come with it.
    const got = inbox(second);
    const d = await addDevice(h, 'session-probe');
    const dev = track(await connectDevice(h, d));
    await dev.publishAsync('/devices/session-probe/events', 'x', { qos: 1 });
    await sleep(200);
    assert.equal(got.length, 0);
  });
});
