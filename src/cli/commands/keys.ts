/** `keyway keys generate` and `keyway keys jwt`: device key pairs and device JWTs. */
import { relative } from 'node:path';
import { Option, type Command } from 'commander';
import { generateDeviceKeyPair } from '../../identity/device-keys.js';
import { JWT_MAX_LIFETIME_SECONDS, signDeviceJwt } from '../../identity/device-jwt.js';
import { parseDuration } from '../arg-parsers.js';
import { readInputFile, scopeOf, withDataDir, withFormat } from '../command-kit.js';
import { UsageError, type CliIo } from '../io.js';

export function registerKeys(program: Command, io: CliIo): void {
  const keys = program.command('keys').description('device key pairs and JWTs (for trying devices out)');

  withFormat(keys.command('generate'))
    .description('write a new private.pem (mode 0600) and public.pem into a directory')
    .addOption(new Option('--type <type>', 'key type').choices(['es256', 'rs256']).makeOptionMandatory())
    .requiredOption('--out <dir>', 'directory to write the key pair into')
    .action(async (f: { type: 'es256' | 'rs256'; out: string }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const files = await generateDeviceKeyPair(f.type, ctx.path(f.out));
      const shown = (p: string): string => {
        const rel = relative(io.cwd, p);
        return rel && !rel.startsWith('..') ? `./${rel}` : p;
      };
      if (out.format !== 'default') {
        out.resource({ privateKeyPath: files.privateKeyPath, publicKeyPath: files.publicKeyPath, format: files.format });
        return;
      }
      out.status(`Wrote ${shown(files.privateKeyPath)} (keep it on the device, mode 0600) and ${shown(files.publicKeyPath)}.`);
      out.status(`Register it with: --public-key path=${shown(files.publicKeyPath)},type=${f.type}`);
    });

  withDataDir(keys.command('jwt'))
    .description('print a device JWT signed with a private key (the MQTT password)')
    .requiredOption('--private-key <file>', 'the device\'s private key (PEM)')
    .option('--project <project>', 'the audience: the project id (default: $KEYWAY_PROJECT or the remembered one)')
    .option('--lifetime <duration>', 'validity, e.g. 20m, 60m, 24h (at most 24h)', '60m')
    .action(async (f: { privateKey: string; lifetime: string }, cmd: Command) => {
      const { ctx } = scopeOf(cmd, io);
      const lifetimeSeconds = parseDuration('--lifetime', f.lifetime);
      if (lifetimeSeconds > JWT_MAX_LIFETIME_SECONDS) throw new UsageError('--lifetime: devices may not use tokens valid for more than 24h');
      const audience = await ctx.setting('project');
      const pem = (await readInputFile(ctx, '--private-key', f.privateKey)).toString('utf8');
      const token = await signDeviceJwt(pem, { audience, lifetimeSeconds });
      io.stdout(`${token}\n`);
    });
}
