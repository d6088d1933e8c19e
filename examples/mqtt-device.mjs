#!/usr/bin/env node
// A complete Keyway device over MQTT (mqtt.js): connects with a JWT signed by its own key,
// subscribes to its configuration and commands, publishes telemetry and state, and reconnects
// with a fresh token before the current one expires.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createPrivateKey } from 'node:crypto';
import { SignJWT } from 'jose';
import mqtt from 'mqtt';

const { values: o } = parseArgs({
  options: {
    project: { type: 'string' },
    region: { type: 'string' },
    registry: { type: 'string' },
    device: { type: 'string' },
    'private-key': { type: 'string' },
    ca: { type: 'string' },
    host: { type: 'string', default: 'localhost' },
    port: { type: 'string', default: '8883' },
    'token-minutes': { type: 'string', default: '60' },
    'interval-seconds': { type: 'string', default: '10' },
  },
});
for (const k of ['project', 'region', 'registry', 'device', 'private-key']) {
  if (!o[k]) {
    console.error(`missing --${k}`);
    process.exit(2);
  }
}

const key = createPrivateKey(readFileSync(o['private-key']));
const alg = key.asymmetricKeyType === 'rsa' ? 'RS256' : 'ES256';
const tokenMinutes = Number(o['token-minutes']);
const clientId = `projects/${o.project}/locations/${o.region}/registries/${o.registry}/devices/${o.device}`;

const token = () => {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({}).setProtectedHeader({ alg, typ: 'JWT' }).setIssuedAt(now).setExpirationTime(now + tokenMinutes * 60).setAudience(o.project).sign(key);
};

let client;
let sequence = 0;
async function connect() {
  const c = mqtt.connect({
    protocol: 'mqtts',
    host: o.host,
    port: Number(o.port),
    protocolVersion: 4,
    clientId,
    username: 'unused',
    password: await token(),
    ca: o.ca ? [readFileSync(o.ca)] : undefined,
    reconnectPeriod: 0, // reconnects below, each time with a fresh token
  });
  client = c;
  c.on('connect', () => {
    console.log(`connected as ${clientId}`);
    c.subscribe(`/devices/${o.device}/config`, { qos: 1 });
    c.subscribe(`/devices/${o.device}/commands/#`, { qos: 0 });
    c.publish(`/devices/${o.device}/state`, JSON.stringify({ startedAt: new Date().toISOString() }), { qos: 1 });
  });
  c.on('message', (topic, payload) => console.log(`${topic}: ${payload.toString()}`));
  c.on('error', (e) => console.error(`error: ${e.message}`));
  // Renew well before the server closes the connection at exp (+ skew).
  const renew = setTimeout(() => c.end(), Math.max(60, tokenMinutes * 60 - 60) * 1000);
  c.once('close', () => {
    clearTimeout(renew);
    console.log('connection closed; reconnecting in 5 s');
    setTimeout(connect, 5000);
  });
}

setInterval(() => {
  if (client?.connected) {
    client.publish(`/devices/${o.device}/events`, JSON.stringify({ sequence: sequence++, at: new Date().toISOString() }), { qos: 1 });
  }
}, Number(o['interval-seconds']) * 1000);

await connect();
