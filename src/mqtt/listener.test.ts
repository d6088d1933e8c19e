/**
 * The MQTT TLS listener on its own: server certificates side by side (ECDSA and RSA, picked per
 * client), credentials replaced without restart, client certificates collected as presented,
 * and the ALPN `mqtt` listener.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import pino from 'pino';
import { ensureDevelopmentPki, type ServerTlsMaterial } from '../pki/development-ca.js';
import { deviceChain, issue, makeRoot } from '../../test/support/test-pki.js';
import { MQTT_ALPN_PROTOCOLS, TlsListener, type ListenerOptions } from './listener.js';
import { presentedChain } from './peer-chain.js';

const dir = mkdtempSync(join(tmpdir(), 'keyway-listener-'));
let pki: ServerTlsMaterial;
const log = pino({ level: 'silent' });

before(async () => {
  pki = await ensureDevelopmentPki(dir, []);
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Started {
  readonly listener: TlsListener;
  readonly port: number;
  readonly accepted: TLSSocket[];
}

async function start(options: Partial<ListenerOptions> = {}): Promise<Started> {
  const accepted: TLSSocket[] = [];
  const listener = new TlsListener(
    {
      tls: { cert: [pki.certPem, pki.rsaCertPem], key: [pki.keyPem, pki.rsaKeyPem] },
      host: '127.0.0.1',
      port: 0,
      handshakeTimeoutMs: 5000,
      maxConnections: 100,
      ...options,
    },
    (socket) => {
      accepted.push(socket);
      socket.on('error', () => undefined);
      // An echo, to show that a connection is still up.
      socket.pipe(socket);
    },
    log,
  );
  return { listener, port: await listener.listen(), accepted };
}

async function stop(s: Started): Promise<void> {
  for (const socket of s.accepted) socket.destroy();
  s.listener.destroyAll();
  await s.listener.close();
}

/** Handshakes and resolves with the client socket (its peer certificate and ALPN protocol). */
function handshake(port: number, options: ConnectionOptions = {}): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', servername: 'localhost', port, ca: pki.caCertPem, ...options }, () => resolve(socket));
    socket.once('error', reject);
  });
}

const serverKeyType = (socket: TLSSocket): string | undefined => socket.getPeerX509Certificate()?.publicKey.asymmetricKeyType;

describe('TLS listener', () => {
  it('serves the ECDSA certificate to an ECDSA-only client and the RSA one to an RSA-only client', async () => {
    const s = await start();
    try {
      const ec = await handshake(s.port, {
        maxVersion: 'TLSv1.2',
        ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256',
        sigalgs: 'ecdsa_secp256r1_sha256',
      });
      assert.equal(serverKeyType(ec), 'ec');
      ec.destroy();
      const rsa = await handshake(s.port, {
        maxVersion: 'TLSv1.2',
        ciphers: 'ECDHE-RSA-AES128-GCM-SHA256',
        sigalgs: 'rsa_pss_rsae_sha256:rsa_pkcs1_sha256',
      });
      assert.equal(serverKeyType(rsa), 'rsa');
      rsa.destroy();
      const rsa13 = await handshake(s.port, { minVersion: 'TLSv1.3', sigalgs: 'rsa_pss_rsae_sha256' });
      assert.equal(serverKeyType(rsa13), 'rsa', 'TLS 1.3 picks by signature algorithm');
      rsa13.destroy();
      // Both certificates chain to the development CA and cover localhost (checked by `ca` above).
      assert.ok(new X509Certificate(pki.rsaCertPem).checkIssued(new X509Certificate(pki.caCertPem)));
    } finally {
      await stop(s);
    }
  });

  it('refuses TLS 1.1', async () => {
    const s = await start();
    try {
      await assert.rejects(handshake(s.port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }));
    } finally {
      await stop(s);
    }
  });

  it('asks for a client certificate, admits clients without one, and collects a presented chain leaf first', async () => {
    const s = await start();
    try {
      const none = await handshake(s.port);
      await eventuallyAccepted(s, 1);
      assert.deepEqual(presentedChain(s.accepted[0] as TLSSocket), []);
      none.destroy();

      const { intermediate, leaf } = await deviceChain('dev1');
      const withChain = await handshake(s.port, { key: leaf.keyPem, cert: leaf.pem + intermediate.pem });
      await eventuallyAccepted(s, 2);
      const chain = presentedChain(s.accepted[1] as TLSSocket);
      assert.equal(chain.length, 2, 'the leaf and the intermediate, not the root nobody sent');
      assert.ok(chain[0]?.equals(leaf.der), 'the leaf first');
      assert.ok(chain[1]?.equals(intermediate.der));
      // Reading it again gives the same chain (node hands the chain out only once; it is kept).
      const again = presentedChain(s.accepted[1] as TLSSocket);
      assert.equal(again.length, 2, 'a second read still has the intermediate');
      assert.ok(again[1]?.equals(intermediate.der));
      withChain.destroy();

      // A certificate sent twice is collected once.
      const twice = await handshake(s.port, { key: leaf.keyPem, cert: leaf.pem + intermediate.pem + intermediate.pem });
      await eventuallyAccepted(s, 3);
      assert.equal(presentedChain(s.accepted[2] as TLSSocket).length, 2);
      twice.destroy();

      // A self-signed certificate: one entry.
      const self = await makeRoot({ subject: 'CN=self' });
      const selfSigned = await handshake(s.port, { key: self.keyPem, cert: self.pem });
      await eventuallyAccepted(s, 4);
      assert.equal(presentedChain(s.accepted[3] as TLSSocket).length, 1);
      selfSigned.destroy();
    } finally {
      await stop(s);
    }
  });

  it('takes new credentials for the next handshake; established connections keep theirs; bad ones change nothing', async () => {
    const s = await start({ tls: { cert: pki.certPem, key: pki.keyPem } });
    try {
      const first = await handshake(s.port);
      const firstFingerprint = first.getPeerX509Certificate()?.fingerprint256;
      const root = await makeRoot({ subject: 'CN=Operator Root' });
      const server = await issue(root, {
        subject: 'CN=localhost',
        extendedKeyUsage: ['1.3.6.1.5.5.7.3.1'],
      });
      s.listener.setCredentials({ cert: server.pem, key: server.keyPem });
      const second = await handshake(s.port, { ca: root.pem, checkServerIdentity: () => undefined });
      assert.equal(second.getPeerX509Certificate()?.fingerprint256, new X509Certificate(server.pem).fingerprint256);
      assert.ok(firstFingerprint !== undefined && firstFingerprint !== new X509Certificate(server.pem).fingerprint256);
      assert.equal(await echo(first, 'still there'), 'still there', 'the established connection stays up');

      assert.throws(() => s.listener.setCredentials({ cert: server.pem, key: pki.keyPem }), 'a key that does not match');
      const third = await handshake(s.port, { ca: root.pem, checkServerIdentity: () => undefined });
      assert.equal(third.getPeerX509Certificate()?.fingerprint256, new X509Certificate(server.pem).fingerprint256, 'the old credentials stay');
      await assert.rejects(handshake(s.port, { ca: root.pem, checkServerIdentity: () => undefined, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }), 'still TLS 1.2 or newer');
      for (const socket of [first, second, third]) socket.destroy();
    } finally {
      await stop(s);
    }
  });

  it('with ALPN, serves clients that negotiate mqtt and closes the others', async () => {
    const s = await start({ alpnProtocols: MQTT_ALPN_PROTOCOLS, name: 'alpn' });
    try {
      const mqtt = await handshake(s.port, { ALPNProtocols: ['mqtt'] });
      assert.equal(mqtt.alpnProtocol, 'mqtt');
      await eventuallyAccepted(s, 1);
      mqtt.destroy();
      const aws = await handshake(s.port, { ALPNProtocols: ['x-amzn-mqtt-ca'] });
      assert.equal(aws.alpnProtocol, 'x-amzn-mqtt-ca');
      await eventuallyAccepted(s, 2);
      aws.destroy();

      await assert.rejects(handshake(s.port, { ALPNProtocols: ['http/1.1'] }), /no.application.protocol/i);
      const silent = await handshake(s.port);
      await new Promise((resolve) => silent.once('close', resolve));
      assert.equal(s.accepted.length, 2, 'a client without ALPN never reaches the broker');
    } finally {
      await stop(s);
    }
  });
});

async function eventuallyAccepted(s: Started, count: number): Promise<void> {
  for (let i = 0; i < 200 && s.accepted.length < count; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(s.accepted.length, count, 'connections accepted by the listener');
}

function echo(socket: TLSSocket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    socket.once('data', (data: Buffer) => resolve(data.toString('utf8')));
    socket.once('error', reject);
    socket.write(text);
  });
}
