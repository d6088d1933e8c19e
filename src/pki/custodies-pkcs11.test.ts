import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KeywayError } from '../domain/errors.js';
import { openCaKeyCustodies } from './custodies.js';
import { parsePkcs11Reference } from './pkcs11-custody.js';
import { createSoftHsmToken, softHsmSkip, type SoftHsmToken } from '../../test/support/softhsm.js';

describe('CA key custodies with a PKCS#11 token configured (SoftHSM2)', { skip: softHsmSkip }, () => {
  let token: SoftHsmToken;
  let dir: string;
  const masterKey = Buffer.alloc(32, 7).toString('base64');

  before(async () => {
    token = await createSoftHsmToken();
    dir = await mkdtemp(join(tmpdir(), 'keyway-custodies-'));
  });
  after(async () => {
    await token?.remove();
    await rm(dir, { recursive: true, force: true });
  });

  const settings = (pinFile?: string) => ({ module: token.module, tokenLabel: token.tokenLabel, ...(pinFile ? { pinFile } : {}) });

  test('new CA keys go to the token; keys encrypted before stay usable', async () => {
    const pinFile = join(dir, 'pin');
    await writeFile(pinFile, `${token.pin}\n`, { mode: 0o600 });
    const custodies = await openCaKeyCustodies({ dataDir: join(dir, 'data'), masterKey, pkcs11: settings(pinFile) });
    try {
      const custody = custodies.forNewKeys();
      assert.equal(custody.kind, 'pkcs11');
      const { reference } = await custody.generate('ECDSA_P256', 'seam root');
      assert.equal(parsePkcs11Reference(reference).token, token.tokenLabel);
      assert.equal(custodies.ofKind('pkcs11'), custody);
      const reopened = await custodies.ofKind('pkcs11').open(reference, 'ECDSA_P256', 'seam root');
      assert.equal(reopened.keys.privateKey.extractable, false);
      assert.equal(custodies.ofKind('encrypted').kind, 'encrypted');
    } finally {
      await custodies.close();
    }
  });

  test('KEYWAY_PKCS11_PIN serves when no pin file is set; a wrong PIN stops the start', async () => {
    const custodies = await openCaKeyCustodies({ dataDir: join(dir, 'data'), masterKey, pkcs11: settings(), pkcs11Pin: token.pin });
    await custodies.close();
    await assert.rejects(
      openCaKeyCustodies({ dataDir: join(dir, 'data'), masterKey, pkcs11: settings(), pkcs11Pin: 'wrong' }),
      (e: unknown) => e instanceof KeywayError && e.status === 'FAILED_PRECONDITION' && /wrong PIN/.test(e.message),
    );
  });

  test('a PIN file others can read is refused', async () => {
    const pinFile = join(dir, 'open-pin');
    await writeFile(pinFile, token.pin);
    await chmod(pinFile, 0o644);
    await assert.rejects(
      openCaKeyCustodies({ dataDir: join(dir, 'data'), masterKey, pkcs11: settings(pinFile) }),
      /readable by group or others/,
    );
  });
});
