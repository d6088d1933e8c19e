/** `keyway registries create|describe|list|update|delete` and `keyway registries crl upload`. */
import { InvalidArgumentError, type Command } from 'commander';
import type {
  ApiDeviceRegistry,
  ApiDeviceRegistryInput,
  ApiProvisioningTemplate,
  ApiRegistryCredential,
} from '../../api/wire-types.js';
import { RATE_LIMIT_FIELDS, rateLimitPath } from '../../domain/rate-limits.js';
import { DEVICE_AUTH_METHODS, type DeviceAuthMethod, type RateLimits } from '../../domain/resources.js';
import { parseEventNotificationConfig, parseLogLevel } from '../arg-parsers.js';
import { collect, readInputFile, scopeOf, withApiContext } from '../command-kit.js';
import type { CliContext } from '../context.js';
import { UsageError, type CliIo } from '../io.js';

/** A `--ca-certificate-file` with the `--provisioning-template-file` that followed it, if any. */
interface CaFlag {
  readonly certificateFile: string;
  templateFile?: string;
}

interface RegistryFlags {
  enableMqttConfig?: boolean;
  enableHttpConfig?: boolean;
  eventNotificationConfig?: string[];
  statePubsubTopic?: string;
  logLevel?: string;
  caCertificateFile?: CaFlag[];
  provisioningTemplateFile?: string;
  clearCaCertificates?: boolean;
  deviceAuthMethod?: string;
  clearRateLimits?: boolean;
  /** One per rate limit (`--state-updates-per-second` → stateUpdatesPerSecond): a number or `default`. */
  stateUpdatesPerSecond?: string;
  configUpdatesPerSecond?: string;
  telemetryMessagesPerSecond?: string;
  telemetryBytesPerSecond?: string;
  connectionsPerSecond?: string;
  registryConnectionsPerMinute?: string;
  registryPublishesPerMinute?: string;
}

const RATE_LIMIT_HELP: { readonly [K in keyof RateLimits]: string } = {
  stateUpdatesPerSecond: 'state updates per device per second (default 1)',
  configUpdatesPerSecond: 'configuration updates per device per second, through the admin API (default 1)',
  telemetryMessagesPerSecond: 'telemetry messages per MQTT connection, or per device over HTTP, per second (default 100)',
  telemetryBytesPerSecond: 'telemetry payload bytes per device per second (default 524288)',
  connectionsPerSecond: 'MQTT connections per device per second (default 1)',
  registryConnectionsPerMinute: 'MQTT connections and HTTP requests of all the registry\'s devices per minute (default 60000)',
  registryPublishesPerMinute: 'telemetry events and states of all the registry\'s devices per minute (default 60000)',
};

const flagOf = (field: keyof RateLimits): string => `--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** Rate limit flags: each a positive integer, or `default` to return the limit to its default (update). */
function withRateLimitFlags(cmd: Command): Command {
  for (const field of RATE_LIMIT_FIELDS) cmd.option(`${flagOf(field)} <n>`, `${RATE_LIMIT_HELP[field]}; 'default' resets it`);
  return cmd.option('--clear-rate-limits', 'return every rate limit to its default (update only)');
}

/** The rate limits the flags set, and the mask paths they touch (a field path each, or the whole object). */
function rateLimitsOf(f: RegistryFlags): { limits: Partial<RateLimits>; paths: string[] } {
  const limits: { -readonly [K in keyof RateLimits]?: number } = {};
  const paths: string[] = [];
  for (const field of RATE_LIMIT_FIELDS) {
    const text = f[field];
    if (text === undefined) continue;
    if (f.clearRateLimits) throw new UsageError(`give ${flagOf(field)} or --clear-rate-limits, not both`);
    paths.push(rateLimitPath(field));
    if (text.toLowerCase() === 'default') continue;
    if (!/^[1-9][0-9]{0,11}$/.test(text)) throw new UsageError(`${flagOf(field)}: '${text}' is not a positive integer or 'default'`);
    limits[field] = Number(text);
  }
  if (f.clearRateLimits) paths.push('rate_limits');
  return { limits, paths };
}

function withRegistryFlags(cmd: Command): Command {
  // Commander parses flags in command-line order: a template attaches to the CA just before it.
  const cas: CaFlag[] = [];
  return cmd
    .option(
      '--ca-certificate-file <file>',
      'PEM CA certificate that signs device certificates; repeatable (on update, replaces the list)',
      (file: string): CaFlag[] => {
        cas.push({ certificateFile: file });
        return cas;
      },
    )
    .option(
      '--provisioning-template-file <file>',
      'JSON provisioning template {deviceId, metadata?, configData? (base64), gatewayType?} for the --ca-certificate-file just before it',
      (file: string): string => {
        const last = cas.at(-1);
        if (!last) throw new InvalidArgumentError('must follow the --ca-certificate-file it applies to');
        if (last.templateFile !== undefined) throw new InvalidArgumentError('only one template per --ca-certificate-file');
        last.templateFile = file;
        return file;
      },
    )
    .option('--clear-ca-certificates', 'remove every CA certificate from the registry (update only)')
    .option('--device-auth-method <method>', 'jwt-or-certificate, jwt-only or certificate-only')
    .option('--enable-mqtt-config', 'accept MQTT connections from the registry\'s devices')
    .option('--no-enable-mqtt-config', 'refuse MQTT connections')
    .option('--enable-http-config', 'accept HTTP bridge requests from the registry\'s devices')
    .option('--no-enable-http-config', 'refuse HTTP bridge requests')
    .option('--event-notification-config <spec>', 'topic=TOPIC[,subfolder=SUBFOLDER]; repeatable, first match wins', collect)
    .option('--state-pubsub-topic <topic>', 'topic that receives state notifications')
    .option('--log-level <level>', 'device log level: none, error, info or debug');
}

const AUTH_METHODS: ReadonlyMap<string, DeviceAuthMethod> = new Map(
  DEVICE_AUTH_METHODS.filter((m) => m !== 'DEVICE_AUTH_METHOD_UNSPECIFIED').map((m) => [m.toLowerCase().replace(/_/g, '-'), m]),
);

function parseDeviceAuthMethod(value: string): DeviceAuthMethod {
  const method = AUTH_METHODS.get(value.toLowerCase());
  if (!method) throw new UsageError(`--device-auth-method: '${value}' is not one of ${[...AUTH_METHODS.keys()].join(', ')}`);
  return method;
}

async function readTemplate(ctx: CliContext, file: string): Promise<ApiProvisioningTemplate> {
  const text = (await readInputFile(ctx, '--provisioning-template-file', file)).toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`--provisioning-template-file: ${file} is not JSON: ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new UsageError(`--provisioning-template-file: ${file} must hold a JSON object`);
  // The server checks the fields and names any mistake.
  return parsed as ApiProvisioningTemplate;
}

async function caCredentials(ctx: CliContext, cas: readonly CaFlag[]): Promise<ApiRegistryCredential[]> {
  return Promise.all(
    cas.map(async (ca) => ({
      publicKeyCertificate: {
        format: 'X509_CERTIFICATE_PEM' as const,
        certificate: (await readInputFile(ctx, '--ca-certificate-file', ca.certificateFile)).toString('utf8'),
      },
      ...(ca.templateFile !== undefined ? { provisioningTemplate: await readTemplate(ctx, ca.templateFile) } : {}),
    })),
  );
}

/** The body and update mask the given flags describe. */
async function registryBody(ctx: CliContext, f: RegistryFlags): Promise<{ body: ApiDeviceRegistryInput; mask: string[] }> {
  const body: { -readonly [K in keyof ApiDeviceRegistryInput]: ApiDeviceRegistryInput[K] } = {};
  const mask: string[] = [];
  if (f.enableMqttConfig !== undefined) {
    body.mqttConfig = { mqttEnabledState: f.enableMqttConfig ? 'MQTT_ENABLED' : 'MQTT_DISABLED' };
    mask.push('mqtt_config.mqtt_enabled_state');
  }
  if (f.enableHttpConfig !== undefined) {
    body.httpConfig = { httpEnabledState: f.enableHttpConfig ? 'HTTP_ENABLED' : 'HTTP_DISABLED' };
    mask.push('http_config.http_enabled_state');
  }
  if (f.eventNotificationConfig?.length) {
    body.eventNotificationConfigs = f.eventNotificationConfig.map(parseEventNotificationConfig);
    mask.push('event_notification_configs');
  }
  if (f.statePubsubTopic !== undefined) {
    if (f.statePubsubTopic) body.stateNotificationConfig = { pubsubTopicName: f.statePubsubTopic };
    mask.push('state_notification_config');
  }
  if (f.logLevel !== undefined) {
    body.logLevel = parseLogLevel(f.logLevel);
    mask.push('log_level');
  }
  if (f.clearCaCertificates && f.caCertificateFile?.length)
    throw new UsageError('give --ca-certificate-file or --clear-ca-certificates, not both');
  if (f.caCertificateFile?.length || f.clearCaCertificates) {
    body.credentials = await caCredentials(ctx, f.caCertificateFile ?? []);
    mask.push('credentials');
  }
  if (f.deviceAuthMethod !== undefined) {
    body.deviceAuthMethod = parseDeviceAuthMethod(f.deviceAuthMethod);
    mask.push('device_auth_method');
  }
  const rate = rateLimitsOf(f);
  if (Object.keys(rate.limits).length > 0) body.rateLimits = rate.limits;
  mask.push(...rate.paths);
  return { body, mask };
}

const location = (r: ApiDeviceRegistry): string => r.name.split('/')[3] ?? '';

export function registerRegistries(program: Command, io: CliIo): void {
  const registries = program.command('registries').description('manage device registries');

  withRateLimitFlags(withRegistryFlags(withApiContext(registries.command('create').argument('<id>', 'registry id'))))
    .description('create a registry (and remember --project/--region for later commands)')
    .action(async (id: string, f: RegistryFlags, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const { body } = await registryBody(ctx, f);
      const client = await ctx.client();
      const created = await client.createRegistry(await ctx.location(), { id, ...body });
      await ctx.rememberFlags();
      out.status(`Created registry [${created.id}].`);
      if (out.format !== 'default') out.resource(created);
    });

  withApiContext(registries.command('describe').argument('<id>', 'registry id'))
    .description('show a registry')
    .action(async (id: string, _: unknown, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      out.resource(await (await ctx.client()).getRegistry(await ctx.registry(id)));
    });

  withApiContext(registries.command('list'))
    .description('list the registries of the project and region')
    .action(async (_: unknown, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const all = await (await ctx.client()).listAllRegistries(await ctx.location());
      out.list(all, [
        { header: 'ID', value: (r) => r.id },
        { header: 'LOCATION', value: location },
        { header: 'MQTT_ENABLED', value: (r) => r.mqttConfig?.mqttEnabledState },
        { header: 'HTTP_ENABLED', value: (r) => r.httpConfig?.httpEnabledState },
      ]);
    });

  withRateLimitFlags(withRegistryFlags(withApiContext(registries.command('update').argument('<id>', 'registry id'))))
    .description('change the settings given as flags')
    .action(async (id: string, f: RegistryFlags, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const { body, mask } = await registryBody(ctx, f);
      if (mask.length === 0) throw new UsageError('nothing to update: give at least one setting flag');
      const updated = await (await ctx.client()).patchRegistry(await ctx.registry(id), body, mask);
      out.status(`Updated registry [${updated.id}].`);
      if (out.format !== 'default') out.resource(updated);
    });

  const crl = registries.command('crl').description("certificate revocation lists of the registry's CAs");
  withApiContext(crl.command('upload').argument('<file>', 'CRL file: PEM or DER'))
    .requiredOption('--registry <id>', 'registry id')
    .description("upload a CRL signed by one of the registry's CA certificates; the certificates it lists are cut off")
    .action(async (file: string, f: { registry: string }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const data = await readInputFile(ctx, 'CRL file', file);
      // DER travels as base64; PEM as it is.
      const text = data.subarray(0, 64).toString('latin1').includes('-----BEGIN') ? data.toString('utf8') : data.toString('base64');
      const result = await (await ctx.client()).uploadRegistryCrl(await ctx.registry(f.registry), text);
      out.status(`Uploaded CRL of [${result.issuer}] to registry [${f.registry}]: ${result.revokedCount} revoked certificate(s).`);
      if (out.format !== 'default') out.resource(result);
    });

  withApiContext(registries.command('delete').argument('<id>', 'registry id'))
    .description('delete a registry that has no devices')
    .action(async (id: string, _: unknown, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      await (await ctx.client()).deleteRegistry(await ctx.registry(id));
      out.status(`Deleted registry [${id}].`);
    });
}
