/**
 * The harness of the CLI's tests: the admin API (api/test-stack) over HTTPS with a development
 * PKI, in a temp directory that is the CLI's working directory, so that the CLI finds the admin
 * token and the CA in `./keyway-data` as an operator's would. Not a `*.test.ts`: the runner does
 * not run it on its own.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { AdminClient } from '../api/client.js';
import { startTestStack, TEST_ADMIN_TOKEN, type TestStack } from '../api/test-stack.js';
import { ensureDevelopmentPki } from '../pki/development-ca.js';
import { run } from './run.js';

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A command line as typed (split on blanks, 'single quotes' group) or already split. */
export type CliArgs = string | readonly string[];

export interface CliTestKit {
  /** The working directory; its `keyway-data` holds the development PKI and the admin token. */
  readonly work: string;
  readonly stack: TestStack;
  readonly apiUrl: string;
  /** Everything the CLI printed so far, stdout and stderr, to check that no secret leaks. */
  readonly printed: readonly string[];
  /** Runs `keyway args`; `env` adds to the kit's environment. */
  cli(args: CliArgs, env?: NodeJS.ProcessEnv, cwd?: string): Promise<CliResult>;
  /** Like cli(), and asserts exit code 0. */
  ok(args: CliArgs, env?: NodeJS.ProcessEnv): Promise<CliResult>;
  /** An API client that trusts the development CA. */
  client(): AdminClient;
}

const split = (args: string): string[] => args.match(/(?:[^\s']+|'[^']*')+/g)?.map((a) => a.replace(/'/g, '')) ?? [];

/** Runs `keyway args` in-process with exactly `env`, capturing what it prints. */
export async function runCli(args: CliArgs, env: NodeJS.ProcessEnv, cwd: string): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await run(typeof args === 'string' ? split(args) : args, {
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
    env,
    cwd,
  });
  return { code, stdout, stderr };
}

/**
 * Registers before/after hooks in the calling describe() that start and stop the stack; the
 * kit's fields are usable from the tests (and later before hooks) on. `env` is added to every
 * run, e.g. KEYWAY_PROJECT.
 */
export function cliTestKit(options: { readonly prefix: string; readonly env?: NodeJS.ProcessEnv }): CliTestKit {
  let work = '';
  let stack: TestStack | undefined;
  let apiUrl = '';
  let caCertPem = '';
  const printed: string[] = [];

  before(async () => {
    work = await mkdtemp(join(tmpdir(), options.prefix));
    const dataDir = join(work, 'keyway-data'); // the default data directory, relative to cwd
    const pki = await ensureDevelopmentPki(dataDir, []);
    caCertPem = pki.caCertPem;
    await writeFile(join(dataDir, 'admin-token'), `${TEST_ADMIN_TOKEN}\n`, { mode: 0o600 });
    stack = await startTestStack({ https: { cert: pki.certPem, key: pki.keyPem } });
    await stack.api.listen({ host: '127.0.0.1', port: 0 });
    const address = stack.api.server.address();
    assert.ok(address && typeof address === 'object');
    apiUrl = `https://localhost:${address.port}`;
  });
  after(async () => {
    await stack?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const cli = async (args: CliArgs, env: NodeJS.ProcessEnv = {}, cwd = work): Promise<CliResult> => {
    const r = await runCli(args, { KEYWAY_API_URL: apiUrl, ...options.env, ...env }, cwd);
    printed.push(r.stdout, r.stderr);
    return r;
  };

  return {
    get work() {
      return work;
    },
    get stack() {
      assert.ok(stack, 'the CLI test kit is used before its before() hook ran');
      return stack;
    },
    get apiUrl() {
      return apiUrl;
    },
    printed,
    cli,
    ok: async (args, env) => {
      const r = await cli(args, env);
      assert.equal(r.code, 0, `keyway ${typeof args === 'string' ? args : args.join(' ')}\n${r.stderr}`);
      return r;
    },
    client: () => new AdminClient({ baseUrl: apiUrl, token: TEST_ADMIN_TOKEN, ca: caCertPem }),
  };
}
