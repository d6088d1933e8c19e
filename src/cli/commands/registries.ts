/** `keyway registries create|describe|list|update|delete`. */
import type { Command } from 'commander';
import type { ApiDeviceRegistry, ApiDeviceRegistryInput } from '../../api/wire-types.js';
import { parseEventNotificationConfig, parseLogLevel } from '../arg-parsers.js';
import { collect, scopeOf, withApiContext } from '../command-kit.js';
import { UsageError, type CliIo } from '../io.js';

interface RegistryFlags {
  enableMqttConfig?: boolean;
  enableHttpConfig?: boolean;
  eventNotificationConfig?: string[];
  statePubsubTopic?: string;
  logLevel?: string;
}

function withRegistryFlags(cmd: Command): Command {
  return cmd
    .option('--enable-mqtt-config', 'accept MQTT connections from the registry\'s devices')
    .option('--no-enable-mqtt-config', 'refuse MQTT connections')
    .option('--enable-http-config', 'accept HTTP bridge requests from the registry\'s devices')
    .option('--no-enable-http-config', 'refuse HTTP bridge requests')
    .option('--event-notification-config <spec>', 'topic=TOPIC[,subfolder=SUBFOLDER]; repeatable, first match wins', collect)
    .option('--state-pubsub-topic <topic>', 'topic that receives state notifications')
    .option('--log-level <level>', 'device log level: none, error, info or debug');
}

/** The body and update mask the given flags describe. */
function registryBody(f: RegistryFlags): { body: ApiDeviceRegistryInput; mask: string[] } {
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
  return { body, mask };
}

const location = (r: ApiDeviceRegistry): string => r.name.split('/')[3] ?? '';

export function registerRegistries(program: Command, io: CliIo): void {
  const registries = program.command('registries').description('manage device registries');

  withRegistryFlags(withApiContext(registries.command('create').argument('<id>', 'registry id')))
    .description('create a registry (and remember --project/--region for later commands)')
    .action(async (id: string, f: RegistryFlags, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const { body } = registryBody(f);
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

  withRegistryFlags(withApiContext(registries.command('update').argument('<id>', 'registry id')))
    .description('change the settings given as flags')
    .action(async (id: string, f: RegistryFlags, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const { body, mask } = registryBody(f);
      if (mask.length === 0) throw new UsageError('nothing to update: give at least one setting flag');
      const updated = await (await ctx.client()).patchRegistry(await ctx.registry(id), body, mask);
      out.status(`Updated registry [${updated.id}].`);
      if (out.format !== 'default') out.resource(updated);
    });

  withApiContext(registries.command('delete').argument('<id>', 'registry id'))
    .description('delete a registry that has no devices')
    .action(async (id: string, _: unknown, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      await (await ctx.client()).deleteRegistry(await ctx.registry(id));
      out.status(`Deleted registry [${id}].`);
    });
}
