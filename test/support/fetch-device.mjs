// A device on the HTTP bridge as Google's Node HTTP sample (reference §6.4) drives it, with
// Node's own global `fetch` and nothing else: no test helpers, no TLS options. The server is
// trusted through the process's trust store, as a device's would be (NODE_EXTRA_CA_CERTS).
//
// Reads KEYWAY_BRIDGE (host:port), KEYWAY_DEVICE_PATH (projects/…/devices/{id}), KEYWAY_DEVICE_JWT,
// KEYWAY_BASE64 (`standard`, the Node sample's, or `urlsafe`, the Python sample's
// `base64.urlsafe_b64encode`) and KEYWAY_NUM_MESSAGES; prints a JSON summary on stdout:
// { config, events: [{ status, body, payload }], state } with payloads in hex, or { error } when
// a request could not be made at all.

const { KEYWAY_BRIDGE: bridge, KEYWAY_DEVICE_PATH: devicePath, KEYWAY_DEVICE_JWT: jwt } = process.env;
const alphabet = process.env.KEYWAY_BASE64 ?? 'standard';
const numMessages = Number(process.env.KEYWAY_NUM_MESSAGES ?? '3');
const urlBase = `https://${bridge}/v1/${devicePath}`;

const headers = { authorization: `Bearer ${jwt}`, 'content-type': 'application/json', 'cache-control': 'no-cache' };

/** Python's urlsafe_b64encode keeps the padding; Node's 'base64url' would drop it. */
const encode = (data) => {
  const standard = data.toString('base64');
  return alphabet === 'urlsafe' ? standard.replace(/\+/g, '-').replace(/\//g, '_') : standard;
};

/** Bytes that base64 spells with `+` and `/` (or `-` and `_`), then the sample's text, one byte past a multiple of 3 so that it is padded. */
const payloadOf = (kind, i) => {
  const text = `${devicePath.split('/').pop()}-${kind}-${i}`;
  return Buffer.concat([Buffer.from([0xfb, 0xff, 0xbf]), Buffer.from(text.padEnd(text.length + ((1 - text.length % 3 + 3) % 3), '.'))]);
};

async function call(method, url, body) {
  const response = await fetch(url, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await response.text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: response.status, contentType: response.headers.get('content-type'), body: parsed };
}

async function main() {
  const config = await call('GET', `${urlBase}/config?local_version=0`);
  const events = [];
  for (let i = 1; i <= numMessages; i += 1) {
    const payload = payloadOf('payload', i);
    const binary_data = encode(payload);
    events.push({ ...(await call('POST', `${urlBase}:publishEvent`, { binary_data })), payload: payload.toString('hex'), binary_data });
  }
  const statePayload = payloadOf('state', 1);
  const state = { ...(await call('POST', `${urlBase}:setState`, { state: { binary_data: encode(statePayload) } })), payload: statePayload.toString('hex') };
  return { config, events, state };
}

try {
  process.stdout.write(`${JSON.stringify(await main())}\n`);
} catch (e) {
  // fetch reports TLS and connection failures as a TypeError whose cause holds the reason.
  process.stdout.write(`${JSON.stringify({ error: e.message, code: e.cause?.code ?? null })}\n`);
}
