#!/usr/bin/env node
// A complete Keyway device over HTTPS (the device HTTP bridge): it signs its own JWT and renews
// it before it expires, fetches its configuration with `local_version` so that it only gets what
// changed, and publishes events or state, retrying with backoff when the server asks it to slow
// down (429, honouring Retry-After) or is unavailable (5xx). A refused token (401) or a blocked
// device (403) ends the run: trying again would not change the answer.
//
// It uses node:https rather than the global fetch because fetch in Node 20 cannot be given a CA
// per request: `--ca` names the CA to trust (keyway-data/pki/ca.crt for the development CA).
// Without it, the system's trust store and NODE_EXTRA_CA_CERTS apply.
import { readFileSync } from 'node:fs';
import { request, Agent } from 'node:https';
import { parseArgs } from 'node:util';
import { createPrivateKey } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { SignJWT } from 'jose';

const { values: o } = parseArgs({
  options: {
    project: { type: 'string' },
    region: { type: 'string' },
    registry: { type: 'string' },
    device: { type: 'string' },
    'private-key': { type: 'string' },
    ca: { type: 'string' },
    host: { type: 'string', default: 'localhost:8443' },
    'num-messages': { type: 'string', default: '10' },
    'message-type': { type: 'string', default: 'events' },
    'token-minutes': { type: 'string', default: '20' },
    // Google's sample waited 1 s between events and 2 s between states (1 state per second is the default limit).
    'interval-seconds': { type: 'string' },
  },
});
for (const k of ['project', 'region', 'registry', 'device', 'private-key']) {
  if (!o[k]) {
    console.error(`missing --${k}`);
    process.exit(2);
  }
}
if (o['message-type'] !== 'events' && o['message-type'] !== 'state') {
  console.error('--message-type is events or state');
  process.exit(2);
}

const key = createPrivateKey(readFileSync(o['private-key']));
const alg = key.asymmetricKeyType === 'rsa' ? 'RS256' : 'ES256';
const tokenSeconds = Math.round(Number(o['token-minutes']) * 60);
const numMessages = Number(o['num-messages']);
const intervalMs = Number(o['interval-seconds'] ?? (o['message-type'] === 'state' ? 2 : 1)) * 1000;
const [hostname, port = '8443'] = o.host.split(':');
const agent = new Agent({ keepAlive: true, ca: o.ca ? readFileSync(o.ca) : undefined, minVersion: 'TLSv1.2' });
const devicePath = `projects/${o.project}/locations/${o.region}/registries/${o.registry}/devices/${o.device}`;

/** The current JWT, signed anew once less than a minute (or a tenth of its lifetime) is left. */
let token;
async function bearer() {
  const now = Math.floor(Date.now() / 1000);
  if (!token || token.exp - now < Math.min(60, tokenSeconds / 10)) {
    const exp = now + tokenSeconds;
    const jwt = await new SignJWT({}).setProtectedHeader({ alg, typ: 'JWT' }).setIssuedAt(now).setExpirationTime(exp).setAudience(o.project).sign(key);
    token = { jwt, exp };
    console.log(`signed a new ${alg} token, valid until ${new Date(exp * 1000).toISOString()}`);
  }
  return token.jwt;
}

/** One HTTPS request; resolves with the status, the Retry-After header and the parsed JSON body. */
async function send(method, path, body) {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers = { authorization: `Bearer ${await bearer()}`, ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}) };
  return new Promise((resolve, reject) => {
    const req = request({ agent, hostname, port: Number(port), method, path: `/v1/${devicePath}${path}`, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          json = { raw: text };
        }
        resolve({ status: res.statusCode, retryAfter: res.headers['retry-after'], body: json });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

class Fatal extends Error {}

const MAX_BACKOFF_MS = 32_000;
const MAX_ATTEMPTS = 8;

/** Sends until answered 200: backs off on 429 (as long as Retry-After says), 5xx and network errors; gives up on the rest. */
async function call(method, path, body) {
  for (let attempt = 1; ; attempt += 1) {
    let res;
    try {
      res = await send(method, path, body);
    } catch (e) {
      if (attempt >= MAX_ATTEMPTS) throw new Fatal(`${method} ${path}: ${e.message}`);
      res = { status: 0, body: { error: { message: e.message } } };
    }
    if (res.status === 200) return res.body;
    const message = res.body?.error?.message ?? JSON.stringify(res.body);
    if (res.status === 401) throw new Fatal(`the server refused the device's token (401): check the device id, its key (${alg}), --project and the clock. ${message}`);
    if (res.status === 403) throw new Fatal(`the device may not do this (403): is it blocked, or HTTP disabled for its registry? ${message}`);
    const transient = res.status === 0 || res.status === 429 || res.status >= 500;
    if (!transient || attempt >= MAX_ATTEMPTS) throw new Fatal(`${method} ${path} failed (${res.status}): ${message}`);
    const backoff = Math.min(MAX_BACKOFF_MS, 2 ** (attempt - 1) * 1000) + Math.random() * 1000;
    const waitMs = res.status === 429 && res.retryAfter ? Math.max(Number(res.retryAfter) * 1000, 0) || backoff : backoff;
    console.log(`${method} ${path}: ${res.status || message}; retrying in ${(waitMs / 1000).toFixed(1)} s`);
    await sleep(waitMs);
  }
}

let configVersion = 0;
/** Fetches the configuration if it is newer than the one held (`local_version`). */
async function fetchConfig() {
  const config = await call('GET', `/config?local_version=${configVersion}`);
  if (config.binaryData !== undefined) {
    configVersion = Number(config.version);
    console.log(`config version ${config.version}: ${Buffer.from(config.binaryData, 'base64').toString()}`);
  }
}

try {
  await fetchConfig();
  for (let i = 1; i <= numMessages; i += 1) {
    const payload = `${o.registry}/${o.device}-payload-${i}`;
    const binary_data = Buffer.from(payload).toString('base64');
    if (o['message-type'] === 'events') await call('POST', ':publishEvent', { binary_data });
    else await call('POST', ':setState', { state: { binary_data } });
    console.log(`published ${o['message-type']} ${i}/${numMessages}: ${payload}`);
    await fetchConfig();
    if (i < numMessages) await sleep(intervalMs);
  }
  console.log('done');
} catch (e) {
  if (!(e instanceof Fatal)) throw e;
  console.error(e.message);
  process.exitCode = 1;
} finally {
  agent.destroy();
}
