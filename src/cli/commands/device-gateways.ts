/**
 * `keyway devices gateways bind|unbind|list-bound-devices|list-gateways`, modelled on
 * `gcloud iot devices gateways`: bindings between gateways and the devices they may act for.
 * A gateway is a device created with `--device-type gateway`; devices and gateways may be named
 * by id or numeric id.
 */
import type { Command } from 'commander';
import { scopeOf, withApiContext } from '../command-kit.js';
import type { CliIo } from '../io.js';

interface GatewayFlags {
  registry: string;
  gateway: string;
}

const withRegistry = (cmd: Command): Command => cmd.requiredOption('--registry <id>', 'registry of the gateway and the device');

export function registerDeviceGatewayCommands(devices: Command, io: CliIo): void {
  const gateways = devices.command('gateways').description('bind devices to gateways, and list the bindings');

  withRegistry(withApiContext(gateways.command('bind').argument('<device>', 'device id or numeric id')))
    .description('bind a device to a gateway of the same registry (needed by the association auth methods)')
    .requiredOption('--gateway <id>', 'gateway id or numeric id')
    .action(async (device: string, f: GatewayFlags, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      await (await ctx.client()).bindDeviceToGateway(await ctx.registry(f.registry), f.gateway, device);
      out.status(`Bound device [${device}] to gateway [${f.gateway}].`);
    });

  withRegistry(withApiContext(gateways.command('unbind').argument('<device>', 'device id or numeric id')))
    .description('unbind a device from a gateway; a gateway attached to it by association detaches it at once')
    .requiredOption('--gateway <id>', 'gateway id or numeric id')
    .action(async (device: string, f: GatewayFlags, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      await (await ctx.client()).unbindDeviceFromGateway(await ctx.registry(f.registry), f.gateway, device);
      out.status(`Unbound device [${device}] from gateway [${f.gateway}].`);
    });

  withRegistry(withApiContext(gateways.command('list-bound-devices').argument('<gateway>', 'gateway id or numeric id')))
    .description('list the devices bound to a gateway')
    .action(async (gateway: string, f: GatewayFlags, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const list = await (await ctx.client()).listAllDevices(await ctx.registry(f.registry), {
        fieldMask: ['blocked'],
        gatewayListOptions: { associationsGatewayId: gateway },
      });
      out.list(list, [
        { header: 'ID', value: (d) => d.id },
        { header: 'NUM_ID', value: (d) => d.numId },
        { header: 'BLOCKED', value: (d) => (d.blocked ? 'True' : '') },
      ]);
    });

  withRegistry(withApiContext(gateways.command('list-gateways').argument('<device>', 'device id or numeric id')))
    .description('list the gateways a device is bound to')
    .action(async (device: string, f: GatewayFlags, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const list = await (await ctx.client()).listAllDevices(await ctx.registry(f.registry), {
        fieldMask: ['blocked', 'gateway_config'],
        gatewayListOptions: { associationsDeviceId: device },
      });
      out.list(list, [
        { header: 'ID', value: (d) => d.id },
        { header: 'NUM_ID', value: (d) => d.numId },
        { header: 'AUTH_METHOD', value: (d) => d.gatewayConfig?.gatewayAuthMethod ?? 'GATEWAY_AUTH_METHOD_UNSPECIFIED' },
        { header: 'BLOCKED', value: (d) => (d.blocked ? 'True' : '') },
      ]);
    });
}
