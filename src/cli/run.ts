/**
 * The `keyway` command: builds the command tree, runs one command line and turns every failure
 * into gcloud-style output (`ERROR: (keyway.devices.create) INVALID_ARGUMENT: …`) and an exit
 * status: 0 success, 1 failure, 2 usage error.
 */
import { Command, CommanderError } from 'commander';
import { ApiClientError, ApiConnectionError } from '../api/client.js';
import { isKeywayError } from '../domain/errors.js';
import { registerAudit } from './commands/audit.js';
import { registerCa } from './commands/ca.js';
import { registerCerts } from './commands/certs.js';
import { registerConfig } from './commands/config.js';
import { registerDevices } from './commands/devices.js';
import { registerKeys } from './commands/keys.js';
import { registerPolicies } from './commands/policies.js';
import { registerRegistries } from './commands/registries.js';
import { registerServe } from './commands/serve.js';
import { registerServiceAccounts } from './commands/service-accounts.js';
import { HintError, processIo, UsageError, type CliIo } from './io.js';

export type { CliIo } from './io.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** `keyway.devices.configs.update` for the command being run. */
function labelOf(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join('.');
}

function buildProgram(io: CliIo, onAction: (label: string) => void): Command {
  const program = new Command('keyway')
    .description('Keyway: a self-hosted IoT device core speaking Cloud IoT Core\'s protocol and admin API')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError('(add --help for usage)');
  program.hook('preAction', (_, action) => onAction(labelOf(action)));
  registerServe(program, io);
  registerKeys(program, io);
  registerRegistries(program, io);
  registerDevices(program, io);
  registerConfig(program, io);
  registerCa(program, io);
  registerCerts(program, io);
  registerAudit(program, io);
  registerPolicies(program, io);
  registerServiceAccounts(program, io);
  return program;
}

/** One line (plus field violations) on stderr for a failed command; returns the exit status. */
function report(io: CliIo, label: string, e: unknown): number {
  const line = (text: string): void => io.stderr(`ERROR: (${label}) ${text}\n`);
  if (e instanceof UsageError) {
    line(e.message);
    return EXIT_USAGE;
  }
  if (e instanceof HintError) {
    line(e.message);
    return EXIT_FAILURE;
  }
  if (e instanceof ApiClientError) {
    line(`${e.status}: ${e.message}`);
    for (const v of e.fieldViolations) io.stderr(`- '${v.field}': ${v.description}\n`);
    if (e.httpStatus === 401) {
      io.stderr('The credential was refused: use an unexpired, unrevoked API key of an enabled service account (--api-key-file, KEYWAY_API_KEY), or the admin token in the data directory of the server you are talking to (admin-token).\n');
    }
    return EXIT_FAILURE;
  }
  if (e instanceof ApiConnectionError) {
    if (e.kind === 'tls') {
      line(`the admin API at ${e.url} is not trusted (${e.code ?? e.message}): pass --ca-file or set KEYWAY_CA_FILE to its CA certificate (the development CA is <data-dir>/pki/ca.crt)`);
    } else if (e.kind === 'timeout') {
      line(`no answer from the admin API at ${e.url}: check --api-url / KEYWAY_API_URL and that 'keyway serve' is running`);
    } else {
      line(`cannot reach the admin API at ${e.url} (${e.code ?? e.message}): start it with 'keyway serve', or point --api-url / KEYWAY_API_URL at it`);
    }
    return EXIT_FAILURE;
  }
  if (isKeywayError(e)) {
    line(`${e.status}: ${e.message}`);
    for (const v of e.fieldViolations) io.stderr(`- '${v.field}': ${v.description}\n`);
    return EXIT_FAILURE;
  }
  line(e instanceof Error ? e.message : String(e));
  return EXIT_FAILURE;
}

/** Runs `keyway <argv…>` and resolves to the exit status; never calls process.exit. */
export async function run(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  let label = 'keyway';
  const program = buildProgram(io, (l) => {
    label = l;
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT_OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version requests are successes; everything else commander raises is usage.
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0) return EXIT_OK;
      return EXIT_USAGE;
    }
    return report(io, label, e);
  }
}
