/** Shared pieces of the CLI's commands: context flags, output format, file reading. */
import { readFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { CliContext, type ContextFlags } from './context.js';
import { UsageError, type CliIo } from './io.js';
import { OUTPUT_FORMATS, Printer, type OutputFormat } from './output.js';

/** Collects a repeatable flag into a list. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function withFormat(cmd: Command): Command {
  return cmd.addOption(
    new Option('--format <format>', 'output: default (YAML or a table), json or yaml').choices(OUTPUT_FORMATS).default('default'),
  );
}

export function withDataDir(cmd: Command): Command {
  return cmd.option('--data-dir <dir>', 'local data directory (default: $KEYWAY_DATA_DIR or ./keyway-data)');
}

/** The flags of every command that talks to the admin API. */
export function withApiContext(cmd: Command): Command {
  withDataDir(
    cmd
      .option('--project <project>', 'project id (default: $KEYWAY_PROJECT or the remembered one)')
      .option('--region <region>', 'region, e.g. europe-west1 (default: $KEYWAY_REGION or the remembered one)')
      .option('--api-url <url>', 'admin API URL (default: $KEYWAY_API_URL or https://localhost:9443)')
      .option('--ca-file <file>', 'CA certificate to trust (default: $KEYWAY_CA_FILE or <data-dir>/pki/ca.crt)')
      .option('--admin-token-file <file>', 'file holding the admin token (default: $KEYWAY_ADMIN_TOKEN or <data-dir>/admin-token)')
      .option('--api-key-file <file>', "file holding a service account's API key, used instead of the admin token (default: $KEYWAY_API_KEY)"),
  );
  return withFormat(cmd);
}

export interface CommandScope {
  readonly ctx: CliContext;
  readonly out: Printer;
}

export function scopeOf(cmd: Command, io: CliIo): CommandScope {
  const o = cmd.opts<ContextFlags & { format?: OutputFormat }>();
  const flags: ContextFlags = {
    ...(o.project !== undefined ? { project: o.project } : {}),
    ...(o.region !== undefined ? { region: o.region } : {}),
    ...(o.apiUrl !== undefined ? { apiUrl: o.apiUrl } : {}),
    ...(o.caFile !== undefined ? { caFile: o.caFile } : {}),
    ...(o.dataDir !== undefined ? { dataDir: o.dataDir } : {}),
    ...(o.adminTokenFile !== undefined ? { adminTokenFile: o.adminTokenFile } : {}),
    ...(o.apiKeyFile !== undefined ? { apiKeyFile: o.apiKeyFile } : {}),
  };
  return { ctx: new CliContext(io, flags), out: new Printer(io, o.format ?? 'default') };
}

export async function readInputFile(ctx: CliContext, flag: string, path: string): Promise<Buffer> {
  try {
    return await readFile(ctx.path(path));
  } catch (e) {
    throw new UsageError(`${flag}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Exactly one of `--x-data STR` and `--x-file FILE`. */
export async function dataOrFile(ctx: CliContext, name: string, data: string | undefined, file: string | undefined): Promise<Buffer> {
  if (data !== undefined && file !== undefined) throw new UsageError(`give --${name}-data or --${name}-file, not both`);
  if (data !== undefined) return Buffer.from(data, 'utf8');
  if (file !== undefined) return readInputFile(ctx, `--${name}-file`, file);
  throw new UsageError(`one of --${name}-data or --${name}-file is required`);
}
