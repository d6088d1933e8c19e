/** Device-side helpers: key pairs, JWTs (well-formed and deliberately broken), MQTT clients. */
import { generateKeyPairSync, createSign, createHmac, type KeyObject } from 'node:crypto';
import { connect as tlsConnect } from 'node:tls';
import mqtt, { type MqttClient, type IClientOptions } from 'mqtt';
import mqttPacket from 'mqtt-packet';

export interface DeviceKeys {
  readonly type: 'es256' | 'rs256';
  readonly privateKey: KeyObject;
  readonly privatePem: string;
  readonly publicPem: string;
  /** The API credential for this key. */
  readonly credential: { publicKey: { format: 'ES256_PEM' | 'RSA_PEM'; key: string } };
}

export function deviceKeys(type: 'es256' | 'rs256'): DeviceKeys {
  const { privateKey, publicKey } =
    type === 'es256'
      ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
      : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return {
    type,
    privateKey,
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem,
    credential: { publicKey: { format: type === 'es256' ? 'ES256_PEM' : 'RSA_PEM', key: publicPem } },
  };
}

const b64url = (v: Buffer | string): string => Buffer.from(v).toString('base64url');

export interface Claims {
  iat?: number;
  exp?: number;
  aud?: string | string[];
  [k: string]: unknown;
}

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** Signs a JWT by hand so tests can produce exactly the malformed tokens an attacker would. */
export function signJwt(keys: DeviceKeys, claims: Claims, alg: string = keys.type === 'es256' ? 'ES256' : 'RS256'): string {
  const header = b64url(JSON.stringify({ alg, typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const input = `${header}.${body}`;
  let signature: Buffer;
  if (alg === 'none') signature = Buffer.alloc(0);
  else if (alg === 'HS256') signature = createHmac('sha256', keys.publicPem).update(input).digest();
  else if (alg === 'ES256') signature = createSign('sha256').update(input).sign({ key: keys.privateKey, dsaEncoding: 'ieee-p1363' });
  else signature = createSign('sha256').update(input).sign(keys.privateKey);
  return `${input}.${b64url(signature)}`;
}

export function validToken(keys: DeviceKeys, project: string, lifetime = 3600): string {
  const iat = nowSeconds();
  return signJwt(keys, { iat, exp: iat + lifetime, aud: project });
}

export function devicePath(project: string, location: string, registry: string, device: string): string {
  return `projects/${project}/locations/${location}/registries/${registry}/devices/${device}`;
}

export function mqttOptions(port: number, ca: string, extra: IClientOptions): IClientOptions {
  return {
    protocol: 'mqtts',
    host: '127.0.0.1',
    servername: 'localhost',
    port,
    ca: [ca],
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...extra,
  };
}

/** Connects with mqtt.js; resolves on CONNACK 0, rejects with the CONNACK code otherwise. */
export function connectClient(port: number, ca: string, extra: IClientOptions): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(mqttOptions(port, ca, extra));
    client.once('connect', () => resolve(client));
    client.once('error', (e) => {
      client.end(true);
      reject(e);
    });
  });
}

/**
 * Connects mqtt.js over `wss://127.0.0.1:{port}/mqtt` (the device HTTPS listener), MQTT 5 unless
 * `extra` says otherwise; resolves on CONNACK 0, rejects with the refusal otherwise.
 */
export function connectWebSocketClient(port: number, ca: string, extra: IClientOptions): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect({
      protocol: 'wss',
      host: '127.0.0.1',
      port,
      path: '/mqtt',
      ca: [ca],
      protocolVersion: 5,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      ...extra,
    });
    client.once('connect', () => resolve(client));
    client.once('error', (e) => {
      client.end(true);
      reject(e);
    });
    // mqtt.js reports some transport failures (an upgrade refused) by closing alone.
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
}

/** Resolves when the client's connection closes (the server closed it). */
export const closed = (client: MqttClient): Promise<void> =>
  new Promise((resolve) => (client.connected ? client.once('close', () => resolve()) : resolve()));

/**
 * Sends one CONNECT over raw TLS and returns every byte the server sent before closing: proves
 * that a refused client learns nothing beyond the CONNACK.
 */
export function rawConnect(port: number, ca: string, clientId: string, password: string | undefined): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: [ca] }, () => {
      socket.write(
        mqttPacket.generate({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clean: true,
          clientId,
          keepalive: 60,
          username: 'unused',
          ...(password !== undefined ? { password: Buffer.from(password) } : {}),
        }),
      );
    });
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      const got = Buffer.concat(chunks);
      // Accepted: nothing more to prove, hang up. Refused: wait for the server to close.
      if (got.length >= 4 && got[3] === 0) socket.end();
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks)));
    socket.setTimeout(10_000, () => {
      socket.destroy();
      reject(new Error('server neither answered nor closed within 10 s'));
    });
  });
}
