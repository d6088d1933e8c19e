import assert from 'node:assert/strict';
import { randomBytes, webcrypto } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KeywayError } from '../domain/errors.js';
import { EncryptedKeyCustody } from './encrypted-custody.js';
import { kekId, loadKeyEncryptionKey, type KeyEncryptionKey } from './key-encryption-key.js';

const crypto = webcrypto as unknown as Crypto;
const kekOf = (key: Buffer): KeyEncryptionKey => ({ key, id: kekId(key), source: 'test' });
const precondition = (pattern: RegExp) => (e: unknown) =>
  e instanceof KeywayError && e.status === 'FAILED_PRECONDITION' && pattern.test(e.message);

async function signs(handle: { keys: CryptoKeyPair; crypto: Crypto }, algorithm: AlgorithmIdentifier | EcdsaParams): Promise<boolean> {
  const data = Buffer.from('tbs');
  const signature = await handle.crypto.subtle.sign(algorithm, handle.keys.privateKey, data);
  return crypto.subtle.verify(algorithm, handle.keys.publicKey, signature, data);
}

describe('encrypted CA key custody', () => {
  const kek = kekOf(randomBytes(32));
  const custody = new EncryptedKeyCustody(kek);
  const label = 'projects/demo/locations/europe-west1/authorities/root';

  it('generates P-256 and RSA keys that reopen from their reference, non-extractable', async () => {
    for (const [algorithm, params] of [
      ['ECDSA_P256', { name: 'ECDSA', hash: 'SHA-256' }],
      ['RSA_2048', { name: 'RSASSA-PKCS1-v1_5' }],
    ] as const) {
      const { handle, reference } = await custody.generate(algorithm, label);
      assert.equal(handle.keys.privateKey.extractable, false);
      assert.ok(await signs(handle, params));
      const reopened = await custody.open(reference, algorithm, label);
      assert.equal(reopened.keys.privateKey.extractable, false);
      const spki = (h: typeof handle) => h.crypto.subtle.exportKey('spki', h.keys.publicKey);
      assert.deepEqual(Buffer.from(await spki(reopened)), Buffer.from(await spki(handle)));
      assert.ok(await signs(reopened, params));
    }
  });

  it('keeps only ciphertext in the reference: no PKCS#8 structure, no PEM', async () => {
    const { reference } = await custody.generate('ECDSA_P256', label);
    const parsed = JSON.parse(reference) as Record<string, string>;
    assert.deepEqual(Object.keys(parsed).sort(), ['algorithm', 'ciphertext', 'format', 'iv', 'kek', 'tag']);
    assert.equal(parsed.kek, kek.id);
    assert.equal(Buffer.from(parsed.iv ?? '', 'base64').length, 12);
    assert.doesNotMatch(reference, /PRIVATE KEY/);
    // A PKCS#8 P-256 key starts 30 81 87 02 01 00 30 13 06 07 2a 86 48 ce 3d 02 01: never visible.
    assert.ok(!Buffer.from(parsed.ciphertext ?? '', 'base64').includes(Buffer.from('2a8648ce3d0201', 'hex')));
  });

  it('refuses a wrong KEK by its id, with a clear message', async () => {
    const { reference } = await custody.generate('ECDSA_P256', label);
    const other = new EncryptedKeyCustody(kekOf(randomBytes(32)));
    await assert.rejects(other.open(reference, 'ECDSA_P256', label), precondition(new RegExp(`encrypted under key-encryption key ${kek.id}`)));
  });

  it('refuses a tampered ciphertext, tag or IV', async () => {
    const { reference } = await custody.generate('ECDSA_P256', label);
    for (const field of ['ciphertext', 'tag', 'iv'] as const) {
      const r = JSON.parse(reference) as Record<string, string>;
      const bytes = Buffer.from(r[field] ?? '', 'base64');
      bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0x01;
      r[field] = bytes.toString('base64');
      await assert.rejects(custody.open(JSON.stringify(r), 'ECDSA_P256', label), precondition(/does not decrypt/), field);
    }
  });

  it('refuses a reference moved to another CA (the label is authenticated data)', async () => {
    const { reference } = await custody.generate('ECDSA_P256', label);
    await assert.rejects(
      custody.open(reference, 'ECDSA_P256', 'projects/demo/locations/europe-west1/authorities/int-b1'),
      precondition(/belongs to another CA/),
    );
  });

  it('refuses an algorithm other than the stored one, and garbage', async () => {
    const { reference } = await custody.generate('ECDSA_P256', label);
    await assert.rejects(custody.open(reference, 'RSA_2048', label), precondition(/is ECDSA_P256, not RSA_2048/));
    await assert.rejects(custody.open('not json', 'ECDSA_P256', label), precondition(/not a valid encrypted key reference/));
  });

  it('without a KEK, creating a key fails saying how to configure one', async () => {
    const none = new EncryptedKeyCustody(undefined);
    await assert.rejects(none.generate('ECDSA_P256', label), precondition(/KEYWAY_MASTER_KEY.*|pki\.masterKeyFile/));
  });
});

describe('loading the key-encryption key', () => {
  let dir: string;
  let dataDir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keyway-kek-'));
    dataDir = join(dir, 'data');
    await mkdir(dataDir);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('takes KEYWAY_MASTER_KEY as base64 or hex of 32 bytes', async () => {
    const key = randomBytes(32);
    assert.deepEqual((await loadKeyEncryptionKey({ dataDir, masterKey: key.toString('base64') }))?.key, key);
    assert.deepEqual((await loadKeyEncryptionKey({ dataDir, masterKey: key.toString('hex') }))?.key, key);
    assert.equal(await loadKeyEncryptionKey({ dataDir }), undefined);
    await assert.rejects(loadKeyEncryptionKey({ dataDir, masterKey: randomBytes(16).toString('base64') }), precondition(/exactly 32 bytes/));
  });

  it('takes a 0600 file outside the data directory, as text or raw bytes', async () => {
    const key = randomBytes(32);
    const text = join(dir, 'master.key');
    await writeFile(text, `${key.toString('base64')}\n`, { mode: 0o600 });
    assert.deepEqual((await loadKeyEncryptionKey({ dataDir, masterKeyFile: text }))?.key, key);
    const raw = join(dir, 'master.bin');
    await writeFile(raw, key, { mode: 0o600 });
    const loaded = await loadKeyEncryptionKey({ dataDir, masterKeyFile: raw });
    assert.deepEqual(loaded?.key, key);
    assert.equal(loaded?.id, kekId(key));
  });

  it('refuses a file readable by group or others', async () => {
    const file = join(dir, 'open.key');
    await writeFile(file, randomBytes(32).toString('base64'));
    await chmod(file, 0o640);
    await assert.rejects(loadKeyEncryptionKey({ dataDir, masterKeyFile: file }), precondition(/readable by group or others/));
  });

  it('refuses a file inside the data directory, even through ..', async () => {
    const file = join(dataDir, 'master.key');
    await writeFile(file, randomBytes(32).toString('base64'), { mode: 0o600 });
    await assert.rejects(loadKeyEncryptionKey({ dataDir, masterKeyFile: file }), precondition(/inside the data directory/));
    await assert.rejects(
      loadKeyEncryptionKey({ dataDir, masterKeyFile: join(dataDir, '..', 'data', 'master.key') }),
      precondition(/inside the data directory/),
    );
  });

  it('refuses both a file and the variable, and a missing file', async () => {
    const file = join(dir, 'master.key');
    await assert.rejects(
      loadKeyEncryptionKey({ dataDir, masterKeyFile: file, masterKey: randomBytes(32).toString('base64') }),
      precondition(/set only one/),
    );
    await assert.rejects(loadKeyEncryptionKey({ dataDir, masterKeyFile: join(dir, 'nope') }), precondition(/cannot be read/));
  });
});
