/**
 * `keyway devices certificates register|list|describe|update|delete`: X.509 certificates
 * registered to a device (AWS IoT style). A certificate is named by the SHA-256 of its DER,
 * as `list` shows it.
 */
import type { Command } from 'commander';
import { readInputFile, scopeOf, withApiContext } from '../command-kit.js';
import { UsageError, type CliIo } from '../io.js';

interface CertificateFlags {
  registry: string;
  device: string;
}

const STATES = ['ACTIVE', 'INACTIVE', 'REVOKED'];

const withDevice = (cmd: Command): Command =>
  cmd.requiredOption('--registry <id>', 'registry of the device').requiredOption('--device <id>', 'device id or numeric id');

export function registerDeviceCertificateCommands(devices: Command, io: CliIo): void {
  const certificates = devices.command('certificates').description("X.509 certificates registered to a device (mutual TLS)");

  withDevice(withApiContext(certificates.command('register')))
    .description("register a certificate to a device; it must chain to one of the registry's CA certificates")
    .requiredOption('--certificate-file <file>', "the device's PEM certificate, optionally followed by its intermediates")
    .option('--inactive', 'register it INACTIVE (not usable until updated to ACTIVE)')
    .action(async (f: CertificateFlags & { certificateFile: string; inactive?: boolean }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const pem = (await readInputFile(ctx, '--certificate-file', f.certificateFile)).toString('utf8');
      const registered = await (await ctx.client()).registerDeviceCertificate(
        await ctx.device(f.registry, f.device),
        pem,
        f.inactive ? 'INACTIVE' : 'ACTIVE',
      );
      out.status(`Registered certificate [${registered.fingerprint}] to device [${f.device}] (${registered.state}).`);
      if (out.format !== 'default') out.resource(registered);
    });

  withDevice(withApiContext(certificates.command('list')))
    .description("list a device's certificates")
    .action(async (f: CertificateFlags, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const list = await (await ctx.client()).listDeviceCertificates(await ctx.device(f.registry, f.device));
      out.list(list, [
        { header: 'FINGERPRINT', value: (c) => c.fingerprint },
        { header: 'STATE', value: (c) => c.state },
        { header: 'SUBJECT', value: (c) => c.subject },
        { header: 'EXPIRY_TIME', value: (c) => c.expiryTime },
      ]);
    });

  withDevice(withApiContext(certificates.command('describe').argument('<fingerprint>', 'SHA-256 of the certificate')))
    .description('show a device certificate')
    .action(async (fingerprint: string, f: CertificateFlags, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      out.resource(await (await ctx.client()).getDeviceCertificate(await ctx.device(f.registry, f.device), fingerprint));
    });

  withDevice(withApiContext(certificates.command('update').argument('<fingerprint>', 'SHA-256 of the certificate')))
    .description('change the state of a device certificate; REVOKED is permanent')
    .requiredOption('--state <state>', 'ACTIVE, INACTIVE or REVOKED')
    .action(async (fingerprint: string, f: CertificateFlags & { state: string }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const state = f.state.toUpperCase();
      if (!STATES.includes(state)) throw new UsageError(`--state must be one of ${STATES.join(', ')}`);
      const updated = await (await ctx.client()).updateDeviceCertificateState(await ctx.device(f.registry, f.device), fingerprint, state);
      out.status(`Certificate [${updated.fingerprint}] is now ${updated.state}.`);
      if (out.format !== 'default') out.resource(updated);
    });

  withDevice(withApiContext(certificates.command('delete').argument('<fingerprint>', 'SHA-256 of the certificate')))
    .description('delete a device certificate; connections made with it end')
    .action(async (fingerprint: string, f: CertificateFlags, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      await (await ctx.client()).deleteDeviceCertificate(await ctx.device(f.registry, f.device), fingerprint);
      out.status(`Deleted certificate [${fingerprint}] of device [${f.device}].`);
    });
}
