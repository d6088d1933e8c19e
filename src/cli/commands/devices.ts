/**
 * `keyway devices create|describe|list|update|delete` and
 * `keyway devices configs update|list`, `devices states list`, `devices commands send`;
 * `devices certificates …` and `devices gateways …` live in their own files.
 */
import type { Command } from 'commander';
import type { ApiDeviceCredential, ApiDeviceInput } from '../../api/wire-types.js';
import {
  parseAuthMethod,
  parseCount,
  parseDeviceType,
  parseLogLevel,
  parseMetadata,
  parsePublicKeySpec,
  publicKeyFormat,
} from '../arg-parsers.js';
import { collect, dataOrFile, readInputFile, scopeOf, withApiContext } from '../command-kit.js';
import type { CliContext } from '../context.js';
import { UsageError, type CliIo } from '../io.js';
import { registerDeviceCertificateCommands } from './device-certificates.js';
import { registerDeviceGatewayCommands } from './device-gateways.js';

interface DeviceFlags {
  registry: string;
  publicKey?: string[];
  blocked?: boolean;
  metadata?: string[];
  logLevel?: string;
  deviceType?: string;
  authMethod?: string;
}

const withRegistry = (cmd: Command): Command => cmd.requiredOption('--registry <id>', 'registry of the device');

function withDeviceFlags(cmd: Command, purpose: 'create' | 'update'): Command {
  cmd
    .option(
      '--public-key <spec>',
      'path=FILE,type=es256|es256-pem|es256-x509-pem|rs256|rsa-pem|rsa-x509-pem[,expiration-time=RFC3339]; repeatable (at most 3)' +
        (purpose === 'update' ? '; replaces all credentials' : ''),
      collect,
    )
    .option('--blocked', 'refuse the device\'s connections')
    .option('--no-blocked', 'accept the device\'s connections')
    .option('--metadata <k=v,...>', 'metadata pairs; repeatable' + (purpose === 'update' ? '; replaces all metadata' : ''), collect)
    .option('--log-level <level>', 'device log level: none, error, info or debug')
    .option('--auth-method <method>', 'gateway auth method: association-only, device-auth-token-only or association-and-device-auth-token');
  if (purpose === 'create') cmd.option('--device-type <type>', 'gateway or non-gateway');
  return cmd;
}

async function credentialsOf(ctx: CliContext, specs: readonly string[]): Promise<ApiDeviceCredential[]> {
  return Promise.all(
    specs.map(async (text) => {
      const spec = parsePublicKeySpec(text);
      const pem = (await readInputFile(ctx, '--public-key', spec.path)).toString('utf8');
      return {
        publicKey: { format: publicKeyFormat(spec.type, pem), key: pem },
        ...(spec.expirationTime ? { expirationTime: spec.expirationTime } : {}),
      };
    }),
  );
}

/** The body and update mask the given flags describe. */
async function deviceBody(ctx: CliContext, f: DeviceFlags): Promise<{ body: ApiDeviceInput; mask: string[] }> {
  const body: { -readonly [K in keyof ApiDeviceInput]: ApiDeviceInput[K] } = {};
  const mask: string[] = [];
  if (f.publicKey?.length) {
    body.credentials = await credentialsOf(ctx, f.publicKey);
    mask.push('credentials');
  }
  if (f.blocked !== undefined) {
    body.blocked = f.blocked;
    mask.push('blocked');
  }
  if (f.metadata?.length) {
    body.metadata = parseMetadata(f.metadata);
    mask.push('metadata');
  }
  if (f.logLevel !== undefined) {
    body.logLevel = parseLogLevel(f.logLevel);
    mask.push('log_level');
  }
  if (f.deviceType !== undefined || f.authMethod !== undefined) {
    body.gatewayConfig = {
      ...(f.deviceType !== undefined ? { gatewayType: parseDeviceType(f.deviceType) } : {}),
      ...(f.authMethod !== undefined ? { gatewayAuthMethod: parseAuthMethod(f.authMethod) } : {}),
    };
    if (f.authMethod !== undefined) mask.push('gateway_config.gateway_auth_method');
  }
  return { body, mask };
}

const limitOf = (text: string | undefined): number | undefined => (text === undefined ? undefined : parseCount('--limit', text));

export function registerDevices(program: Command, io: CliIo): void {
  const devices = program.command('devices').description('manage devices, their configs, states and commands');

  withDeviceFlags(withRegistry(withApiContext(devices.command('create').argument('<id>', 'device id'))), 'create')
    .description('create a device')
    .action(async (id: string, f: DeviceFlags, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const { body } = await deviceBody(ctx, f);
      const created = await (await ctx.client()).createDevice(await ctx.registry(f.registry), { id, ...body });
      out.status(`Created device [${created.id}] (numId ${created.numId}).`);
      if (out.format !== 'default') out.resource(created);
    });

  withRegistry(withApiContext(devices.command('describe').argument('<id>', 'device id or numeric id')))
    .description('show a device')
    .action(async (id: string, f: DeviceFlags, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      out.resource(await (await ctx.client()).getDevice(await ctx.device(f.registry, id)));
    });

  withRegistry(withApiContext(devices.command('list')))
    .description('list the devices of a registry')
    .option('--device-ids <ids>', 'only these device ids (comma-separated)')
    .option('--device-num-ids <ids>', 'only these numeric ids (comma-separated)')
    .option('--device-type <type>', 'only gateways (gateway) or only other devices (non-gateway)')
    .option('--limit <n>', 'show at most N devices')
    .action(async (f: DeviceFlags & { deviceIds?: string; deviceNumIds?: string; limit?: string }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const split = (s: string | undefined): string[] | undefined => s?.split(',').map((x) => x.trim()).filter(Boolean);
      const limit = limitOf(f.limit);
      const deviceIds = split(f.deviceIds);
      const deviceNumIds = split(f.deviceNumIds);
      const gatewayType = f.deviceType === undefined ? undefined : parseDeviceType(f.deviceType) === 'GATEWAY' ? 'GATEWAY' : 'NON_GATEWAY';
      const all = await (await ctx.client()).listAllDevices(await ctx.registry(f.registry), {
        fieldMask: ['blocked'],
        ...(deviceIds ? { deviceIds } : {}),
        ...(deviceNumIds ? { deviceNumIds } : {}),
        ...(gatewayType ? { gatewayListOptions: { gatewayType } } : {}),
      });
      out.list(limit === undefined ? all : all.slice(0, limit), [
        { header: 'ID', value: (d) => d.id },
        { header: 'NUM_ID', value: (d) => d.numId },
        { header: 'BLOCKED', value: (d) => (d.blocked ? 'True' : '') },
      ]);
    });

  withDeviceFlags(withRegistry(withApiContext(devices.command('update').argument('<id>', 'device id or numeric id'))), 'update')
    .description('change the settings given as flags')
    .action(async (id: string, f: DeviceFlags, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const { body, mask } = await deviceBody(ctx, f);
      if (mask.length === 0) throw new UsageError('nothing to update: give at least one setting flag');
      const updated = await (await ctx.client()).patchDevice(await ctx.device(f.registry, id), body, mask);
      out.status(`Updated device [${updated.id}].`);
      if (out.format !== 'default') out.resource(updated);
    });

  withRegistry(withApiContext(devices.command('delete').argument('<id>', 'device id or numeric id')))
    .description('delete a device')
    .action(async (id: string, f: DeviceFlags, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      await (await ctx.client()).deleteDevice(await ctx.device(f.registry, id));
      out.status(`Deleted device [${id}].`);
    });

  // -- configs ---------------------------------------------------------------------------------
  const configs = devices.command('configs').description('device configuration versions');

  withRegistry(withApiContext(configs.command('update').argument('<id>', 'device id or numeric id')))
    .description('push a new config version to a device')
    .option('--config-data <text>', 'the config, as text')
    .option('--config-file <file>', 'the config, read from a file (binary is fine)')
    .option('--version-to-update <n>', 'only if the current version is N (0: unconditionally)')
    .action(async (id: string, f: DeviceFlags & { configData?: string; configFile?: string; versionToUpdate?: string }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const data = await dataOrFile(ctx, 'config', f.configData, f.configFile);
      const version = f.versionToUpdate === undefined ? undefined : parseCount('--version-to-update', f.versionToUpdate);
      const config = await (await ctx.client()).modifyCloudToDeviceConfig(await ctx.device(f.registry, id), data, version);
      out.status(`Updated config of device [${id}] to version ${config.version}.`);
      out.resource(config);
    });

  withRegistry(withApiContext(configs.command('list').argument('<id>', 'device id or numeric id')))
    .description('list the kept config versions, newest first')
    .option('--limit <n>', 'show at most N versions')
    .action(async (id: string, f: DeviceFlags & { limit?: string }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const list = await (await ctx.client()).listConfigVersions(await ctx.device(f.registry, id), limitOf(f.limit));
      out.list(list, [
        { header: 'VERSION', value: (c) => c.version },
        { header: 'CLOUD_UPDATE_TIME', value: (c) => c.cloudUpdateTime },
        { header: 'DEVICE_ACK_TIME', value: (c) => c.deviceAckTime },
      ]);
    });

  // -- states ----------------------------------------------------------------------------------
  withRegistry(withApiContext(devices.command('states').description('states reported by devices').command('list').argument('<id>', 'device id or numeric id')))
    .description('list the kept states, newest first')
    .option('--limit <n>', 'show at most N states')
    .action(async (id: string, f: DeviceFlags & { limit?: string }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const list = await (await ctx.client()).listStates(await ctx.device(f.registry, id), limitOf(f.limit));
      out.list(list, [
        { header: 'UPDATE_TIME', value: (s) => s.updateTime },
        { header: 'BINARY_DATA', value: (s) => s.binaryData },
      ]);
    });

  // -- commands --------------------------------------------------------------------------------
  withRegistry(withApiContext(devices.command('commands').description('commands to connected devices').command('send').argument('<id>', 'device id or numeric id')))
    .description('send a command to a connected device')
    .option('--command-data <text>', 'the command, as text')
    .option('--command-file <file>', 'the command, read from a file (binary is fine)')
    .option('--subfolder <path>', 'published on /devices/{id}/commands/{subfolder}')
    .action(async (id: string, f: DeviceFlags & { commandData?: string; commandFile?: string; subfolder?: string }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const data = await dataOrFile(ctx, 'command', f.commandData, f.commandFile);
      await (await ctx.client()).sendCommandToDevice(await ctx.device(f.registry, id), data, f.subfolder);
      out.status(`Sent command to device [${id}].`);
    });

  registerDeviceCertificateCommands(devices, io);
  registerDeviceGatewayCommands(devices, io);
}
