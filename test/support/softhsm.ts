/**
 * Throw-away SoftHSM2 tokens for the PKCS#11 tests. SoftHSM reads SOFTHSM2_CONF when the module
 * is initialized and C_Initialize is once per process, so each test process gets one temporary
 * token directory (its own conf, set in this process's environment) and every token it creates
 * lives there; the directory is removed when the process exits.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

const MODULE_CANDIDATES = [
  '/usr/lib/softhsm/libsofthsm2.so',
  '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/local/lib/softhsm/libsofthsm2.so',
];

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && existsSync(join(dir, command)));
}

/** The SoftHSM2 PKCS#11 module, when SoftHSM2 is installed. */
export const softHsmModule: string | undefined = onPath('softhsm2-util')
  ? MODULE_CANDIDATES.find((path) => existsSync(path))
  : undefined;

/** `skip` option of the tests that need SoftHSM2. */
export const softHsmSkip: string | false = softHsmModule ? false : 'install softhsm2 to run the PKCS#11 tests';

export interface SoftHsmToken {
  readonly module: string;
  readonly tokenLabel: string;
  readonly pin: string;
  readonly soPin: string;
  /** The SOFTHSM2_CONF the token lives under (set in this process's environment). */
  readonly conf: string;
  /** Deletes the token and its objects. */
  remove(): Promise<void>;
}

let directory: string | undefined;

function softHsmDirectory(): string {
  if (directory) return directory;
  const dir = mkdtempSync(join(tmpdir(), 'keyway-softhsm-'));
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens, { mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`, {
    mode: 0o600,
  });
  process.env.SOFTHSM2_CONF = conf;
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  directory = dir;
  return dir;
}

/**
 * Initializes a new token with random PINs. Create tokens before a custody opens the module:
 * SoftHSM lists the tokens it found when it was initialized.
 */
export async function createSoftHsmToken(label = `keyway-test-${randomBytes(6).toString('hex')}`): Promise<SoftHsmToken> {
  if (!softHsmModule) throw new Error('SoftHSM2 is not installed');
  const module = softHsmModule;
  const conf = join(softHsmDirectory(), 'softhsm2.conf');
  const env = { ...process.env, SOFTHSM2_CONF: conf };
  const pin = randomBytes(8).toString('hex');
  const soPin = randomBytes(8).toString('hex');
  await run('softhsm2-util', ['--init-token', '--free', '--label', label, '--so-pin', soPin, '--pin', pin], { env });
  return {
    module,
    tokenLabel: label,
    pin,
    soPin,
    conf,
    async remove() {
      await run('softhsm2-util', ['--delete-token', '--token', label], { env }).catch(() => undefined);
    },
  };
}
