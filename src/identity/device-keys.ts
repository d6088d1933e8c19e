/**
 * Device key pairs for operators and tests (`keyway keys create`): the private key is written
 * once, readable by its owner only, and never overwritten.
 */
import { generateKeyPair as generateKeyPairCallback } from 'node:crypto';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { alreadyExists, fieldError } from '../domain/errors.js';
import type { PublicKeyFormat } from '../domain/resources.js';

const generateKeyPair = promisify(generateKeyPairCallback);

export type DeviceKeyType = 'es256' | 'rs256';

export interface DeviceKeyPairFiles {
  readonly privateKeyPath: string;
  readonly publicKeyPath: string;
  /** The credential format to register `public.pem` under. */
  readonly format: PublicKeyFormat;
}

async function generatePem(type: DeviceKeyType): Promise<{ publicKey: string; privateKey: string }> {
  switch (type) {
    case 'es256':
      return generateKeyPair('ec', {
        namedCurve: 'P-256',
        publicKeyEncoding: { type: 'spki', format: 'pem' },
        privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      });
    case 'rs256':
      return generateKeyPair('rsa', {
        modulusLength: 2048,
        publicKeyEncoding: { type: 'spki', format: 'pem' },
        privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      });
    default:
      throw fieldError('type', `unknown key type; expected es256 or rs256`);
  }
}

/** Writes `private.pem` (PKCS#8, 0600) and `public.pem` (SPKI) into `outDir`. */
export async function generateDeviceKeyPair(type: DeviceKeyType, outDir: string): Promise<DeviceKeyPairFiles> {
  const format: PublicKeyFormat = type === 'es256' ? 'ES256_PEM' : 'RSA_PEM';
  const { publicKey, privateKey } = await generatePem(type);
  const dir = resolve(outDir);
  const privateKeyPath = join(dir, 'private.pem');
  const publicKeyPath = join(dir, 'public.pem');
  await mkdir(dir, { recursive: true });

  // 'wx' creates the file with mode 0600 from the start (no window with wider permissions)
  // and fails if a private key is already there.
  let handle;
  try {
    handle = await open(privateKeyPath, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw alreadyExists(`${privateKeyPath} already exists; refusing to overwrite a private key`);
    throw e;
  }
  try {
    await handle.writeFile(privateKey);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await writeFile(publicKeyPath, publicKey, { mode: 0o644 });
  return { privateKeyPath, publicKeyPath, format };
}
