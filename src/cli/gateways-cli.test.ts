import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { ApiClientError, type AdminClient } from '../api/client.js';
import type { GatewayBindingChanged } from '../bus/bus.js';
import { cliTestKit } from './cli-test-kit.js';

const PROJECT = 'demo';
const REGION = 'europe-west1';
const reg = `projects/${PROJECT}/locations/${REGION}/registries/fleet`;
const dev = (id: string): string => `${reg}/devices/${id}`;

/** The first column of a table's rows. */
const ids = (stdout: string): string[] =>
  stdout
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split(/\s+/)[0] ?? '')
    .filter(Boolean);

describe('gateways over the admin API and the CLI', () => {
  const kit = cliTestKit({ prefix: 'keyway-gateways-cli-', env: { KEYWAY_PROJECT: PROJECT, KEYWAY_REGION: REGION } });
  const { cli, ok } = kit;
  let client: AdminClient;
  const events: GatewayBindingChanged[] = [];

  before(async () => {
    client = kit.client();
    await client.createRegistry(`projects/${PROJECT}/locations/${REGION}`, { id: 'fleet' });
    await client.createRegistry(`projects/${PROJECT}/locations/${REGION}`, { id: 'yard' });
    kit.stack.bus.onGatewayBindingChanged((e) => events.push(e));
  });

  it('creates a gateway, binds and unbinds devices, and lists both ways', async () => {
    await ok('devices create gw-1 --registry fleet --device-type gateway --auth-method association-only');
    await ok('devices create sensor-1 --registry fleet');
    const sensor2 = JSON.parse((await ok('devices create sensor-2 --registry fleet --format json')).stdout) as { numId: string };

    const bound = await ok('devices gateways bind sensor-1 --gateway gw-1 --registry fleet');
    assert.match(bound.stderr, /Bound device \[sensor-1\] to gateway \[gw-1\]/);
    await ok(`devices gateways bind ${sensor2.numId} --gateway gw-1 --registry fleet`);
    await ok('devices gateways bind sensor-1 --gateway gw-1 --registry fleet'); // again: no-op
    assert.deepEqual(events, [
      { gateway: dev('gw-1'), device: dev('sensor-1'), bound: true },
      { gateway: dev('gw-1'), device: dev('sensor-2'), bound: true },
    ]);

    const listed = await ok('devices gateways list-bound-devices gw-1 --registry fleet');
    assert.match(listed.stdout, /^ID\s+NUM_ID\s+BLOCKED$/m);
    assert.deepEqual(ids(listed.stdout), ['sensor-1', 'sensor-2']);
    const gateways = await ok('devices gateways list-gateways sensor-1 --registry fleet');
    assert.match(gateways.stdout, /^ID\s+NUM_ID\s+AUTH_METHOD\s+BLOCKED$/m);
    assert.match(gateways.stdout, /^gw-1\s+\d+\s+ASSOCIATION_ONLY$/m);

    assert.deepEqual(ids((await ok('devices list --registry fleet --device-type gateway')).stdout), ['gw-1']);
    assert.deepEqual(ids((await ok('devices list --registry fleet --device-type non-gateway')).stdout), ['sensor-1', 'sensor-2']);

    const unbound = await ok('devices gateways unbind sensor-2 --gateway gw-1 --registry fleet');
    assert.match(unbound.stderr, /Unbound device \[sensor-2\] from gateway \[gw-1\]/);
    assert.deepEqual(ids((await ok('devices gateways list-bound-devices gw-1 --registry fleet')).stdout), ['sensor-1']);
  });

  it('exits non-zero with a clear message when a rule is broken', async () => {
    await ok('devices create gw-2 --registry fleet --device-type gateway --auth-method device-auth-token-only');
    await ok('devices create sensor-y --registry yard');

    const gatewayToGateway = await cli('devices gateways bind gw-2 --gateway gw-1 --registry fleet');
    assert.equal(gatewayToGateway.code, 1);
    assert.match(gatewayToGateway.stderr, /^ERROR: \(keyway\.devices\.gateways\.bind\) INVALID_ARGUMENT: .*is a gateway/m);

    const notAGateway = await cli('devices gateways bind sensor-1 --gateway sensor-2 --registry fleet');
    assert.equal(notAGateway.code, 1);
    assert.match(notAGateway.stderr, /INVALID_ARGUMENT: .*not a gateway/);

    const crossRegistry = await cli('devices gateways bind sensor-y --gateway gw-1 --registry fleet');
    assert.equal(crossRegistry.code, 1);
    assert.match(crossRegistry.stderr, /NOT_FOUND: Device .*registries\/fleet\/devices\/sensor-y not found/);

    const notBound = await cli('devices gateways unbind sensor-2 --gateway gw-2 --registry fleet');
    assert.equal(notBound.code, 1);
    assert.match(notBound.stderr, /NOT_FOUND: Device 'sensor-2' is not bound to gateway 'gw-2'/);

    const stillBound = await cli('devices delete gw-1 --registry fleet');
    assert.equal(stillBound.code, 1);
    assert.match(stillBound.stderr, /FAILED_PRECONDITION: Gateway .*gw-1 still has devices bound to it; unbind them first/);

    const badType = await cli('devices list --registry fleet --device-type bridge');
    assert.notEqual(badType.code, 0);
    assert.match(badType.stderr, /--device-type: 'bridge' is not one of gateway, non-gateway/);

    const missingGateway = await cli('devices gateways bind sensor-1 --registry fleet');
    assert.notEqual(missingGateway.code, 0);
    assert.match(missingGateway.stderr, /--gateway/);
  });

  it('gives the client the same answers, including the gateway list oneof', async () => {
    await client.bindDeviceToGateway(reg, 'gw-1', 'sensor-2');
    const bound = await client.listAllDevices(reg, { gatewayListOptions: { associationsGatewayId: 'gw-1' } });
    assert.deepEqual(bound.map((d) => d.id), ['sensor-1', 'sensor-2']);
    const both = await client
      .listDevices(reg, { gatewayListOptions: { gatewayType: 'GATEWAY', associationsGatewayId: 'gw-1' } })
      .catch((e: unknown) => e);
    assert.ok(both instanceof ApiClientError);
    assert.equal(both.status, 'INVALID_ARGUMENT');
    assert.match(both.message, /oneof/);
    await client.unbindDeviceFromGateway(reg, 'gw-1', 'sensor-2');
    const again = await client.unbindDeviceFromGateway(reg, 'gw-1', 'sensor-2').catch((e: unknown) => e);
    assert.ok(again instanceof ApiClientError);
    assert.equal(again.status, 'NOT_FOUND');
  });
});
