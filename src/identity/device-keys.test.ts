import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { KeywayError } from '../domain/errors.js';
import { signDeviceJwt, verifyDeviceJwt } from './device-jwt.js';
import { generateDeviceKeyPair, type DeviceKeyType } from './device-keys.js';
import { parseCredentialKey } from './public-key.js';

describe('generateDeviceKeyPair', async () => {
  const root = await mkdtemp(join(tmpdir(), 'keyway-device-keys-'));
  after(() => rm(root, { recursive: true, force: true }));

  for (const [type, format, header] of [
    ['es256', 'ES256_PEM', 'ES256'],
    ['rs256', 'RSA_PEM', 'RS256'],
  ] as const) {
    it(`writes a usable ${type} pair: private.pem 0600 (PKCS#8), public.pem (SPKI)`, async () => {
      const outDir = join(root, type, 'nested', 'dir');
      const files = await generateDeviceKeyPair(type, outDir);
      assert.equal(files.format, format);
      assert.equal(files.privateKeyPath, join(outDir, 'private.pem'));
      assert.equal(files.publicKeyPath, join(outDir, 'public.pem'));
      assert.equal((await stat(files.privateKeyPath)).mode & 0o777, 0o600);

      const privatePem = await readFile(files.privateKeyPath, 'utf8');
      const publicPem = await readFile(files.publicKeyPath, 'utf8');
      assert.match(privatePem, /^-----BEGIN PRIVATE KEY-----/);
      assert.match(publicPem, /^-----BEGIN PUBLIC KEY-----/);

      const credential = parseCredentialKey(files.format, publicPem);
      assert.equal(credential.algorithm, header);
      const now = new Date();
      const token = await signDeviceJwt(privatePem, { audience: 'p', now });
      const verified = await verifyDeviceJwt(token, [credential], 'p', now);
      assert.equal(verified.ok, true);
    });
  }

  it('creates the private key with 0600 even under a permissive umask', async () => {
    const previous = process.umask(0);
    try {
      const files = await generateDeviceKeyPair('es256', join(root, 'umask'));
      assert.equal((await stat(files.privateKeyPath)).mode & 0o777, 0o600);
    } finally {
      process.umask(previous);
    }
  });

  it('refuses to overwrite an existing private key and leaves it untouched', async () => {
    const outDir = join(root, 'existing');
    const first = await generateDeviceKeyPair('es256', outDir);
    const before = await readFile(first.privateKeyPath, 'utf8');
    const publicBefore = await readFile(first.publicKeyPath, 'utf8');
    await assert.rejects(generateDeviceKeyPair('rs256', outDir), (e: unknown) => e instanceof KeywayError && e.status === 'ALREADY_EXISTS');
    assert.equal(await readFile(first.privateKeyPath, 'utf8'), before);
    assert.equal(await readFile(first.publicKeyPath, 'utf8'), publicBefore);

    const planted = join(root, 'planted');
    await generateDeviceKeyPair('es256', planted).then(() => writeFile(join(planted, 'private.pem'), 'mine'));
    await assert.rejects(generateDeviceKeyPair('es256', planted), /already exists/);
    assert.equal(await readFile(join(planted, 'private.pem'), 'utf8'), 'mine');
  });

  it('refuses an unknown key type', async () => {
    await assert.rejects(generateDeviceKeyPair('hs256' as DeviceKeyType, join(root, 'unknown')), (e: unknown) => e instanceof KeywayError && e.status === 'INVALID_ARGUMENT');
  });
});
