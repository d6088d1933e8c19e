#!/usr/bin/env node
// A Keyway gateway over MQTT (mqtt.js): connects as the gateway with its own JWT, listens on its
// errors topic, attaches the devices it speaks for, receives their configurations, publishes
// events or state for each of them, then detaches them and disconnects.
//
// Devices bound to an ASSOCIATION_ONLY gateway attach with `{"authorization": ""}`. For the token
// auth methods, `--device-private-keys` gives each device's private key (in the order of
// `--device-ids`) and the gateway attaches each with a JWT signed by it.
//
// The run is short; a gateway that stays up reconnects with a fresh token before its own expires,
// as examples/mqtt-device.mjs does, and attaches its devices again.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createPrivateKey } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { SignJWT } from 'jose';
import mqtt from 'mqtt';

const { values: o } = parseArgs({
  options: {
    project: { type: 'string' },
    region: { type: 'string' },
    registry: { type: 'string' },
    gateway: { type: 'string' },
    'private-key': { type: 'string' },
    'device-ids': { type: 'string' },
    'device-private-keys': { type: 'string' },
    ca: { type: 'string' },
    host: { type: 'string', default: 'localhost' },
    port: { type: 'string', default: '8883' },
    'num-messages': { type: 'string', default: '10' },
    'message-type': { type: 'string', default: 'state' },
    'interval-seconds': { type: 'string', default: '1' },
    'token-minutes': { type: 'string', default: '60' },
  },
});
for (const k of ['project', 'region', 'registry', 'gateway', 'private-key', 'device-ids']) {
  if (!o[k]) {
    console.error(`missing --${k}`);
    process.exit(2);
  }
}
if (o['message-type'] !== 'events' && o['message-type'] !== 'state') {
  console.error('--message-type is events or state');
  process.exit(2);
}
const deviceIds = o['device-ids'].split(',').filter(Boolean);
const deviceKeyFiles = o['device-private-keys']?.split(',');
if (deviceKeyFiles && deviceKeyFiles.length !== deviceIds.length) {
  console.error('--device-private-keys needs one key per device of --device-ids, in the same order');
  process.exit(2);
}

const tokenMinutes = Number(o['token-minutes']);
const jwt = (keyFile) => {
  const key = createPrivateKey(readFileSync(keyFile));
  const alg = key.asymmetricKeyType === 'rsa' ? 'RS256' : 'ES256';
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({}).setProtectedHeader({ alg, typ: 'JWT' }).setIssuedAt(now).setExpirationTime(now + tokenMinutes * 60).setAudience(o.project).sign(key);
};

const client = await mqtt
  .connectAsync({
    protocol: 'mqtts',
    host: o.host,
    port: Number(o.port),
    protocolVersion: 4,
    clientId: `projects/${o.project}/locations/${o.region}/registries/${o.registry}/devices/${o.gateway}`,
    username: 'unused',
    password: await jwt(o['private-key']),
    ca: o.ca ? [readFileSync(o.ca)] : undefined,
    reconnectPeriod: 0,
  })
  .catch((e) => {
    // Every credential failure looks the same to the client (CONNACK 5); the server log says why.
    console.error(`the gateway could not connect: ${e.message}`);
    process.exit(1);
  });
console.log(`connected as gateway ${o.gateway}`);

// The server reports here what goes wrong for the gateway's devices; the connection stays up.
// It sends an error before acknowledging the packet that caused it, so once an attach is
// acknowledged its error, if any, has arrived.
const errorsTopic = `/devices/${o.gateway}/errors`;
const failed = new Set();
let errors = 0;
client.on('message', (topic, payload) => {
  if (topic !== errorsTopic) {
    console.log(`${topic}: ${payload.toString()}`);
    return;
  }
  errors += 1;
  const error = JSON.parse(payload.toString());
  console.error(`error for ${error.device_id}: ${error.error_type}: ${error.description}`);
  if (error.error_type === 'GATEWAY_ATTACHMENT_ERROR') failed.add(error.device_id);
});
client.on('error', (e) => console.error(`error: ${e.message}`));
await client.subscribeAsync(errorsTopic, { qos: 0 });

const attached = [];
for (const [i, id] of deviceIds.entries()) {
  const authorization = deviceKeyFiles ? await jwt(deviceKeyFiles[i]) : '';
  await client.publishAsync(`/devices/${id}/attach`, JSON.stringify({ authorization }), { qos: 1 });
  if (failed.has(id)) continue;
  console.log(`attached ${id}`);
  attached.push(id);
  await client.subscribeAsync(`/devices/${id}/config`, { qos: 1 });
}

for (let n = 1; n <= Number(o['num-messages']); n += 1) {
  if (n > 1) await sleep(Number(o['interval-seconds']) * 1000);
  for (const id of attached) {
    const payload = `${o.registry}/${id}-payload-${n}`;
    const topic = o['message-type'] === 'events' ? `/devices/${id}/events` : `/devices/${id}/state`;
    await client.publishAsync(topic, payload, { qos: 1 });
    console.log(`published ${o['message-type']} for ${id}: ${payload}`);
  }
}

for (const id of attached) {
  await client.publishAsync(`/devices/${id}/detach`, '', { qos: 1 });
  console.log(`detached ${id}`);
}
await client.endAsync();
console.log(errors ? `done, with ${errors} error(s)` : 'done');
process.exitCode = errors ? 1 : 0;
