/**
 * `keyway certs issue|revoke`: device certificates from Keyway's intermediates. With `--csr`
 * the device made its own key; with only `--device`, the key is made here (for development),
 * written 0600, and only the CSR goes to the server.
 */
import { open, mkdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Option, type Command } from 'commander';
import { deviceKeyAndCsr, type DeviceKeyType } from '../../pki/device-csr.js';
import { readInputFile, scopeOf, withApiContext } from '../command-kit.js';
import { HintError, UsageError, type CliIo } from '../io.js';
import { reasonFlag } from './ca.js';

interface IssueFlags {
  ca: string;
  csr?: string;
  device?: string;
  out?: string;
  outDir?: string;
  keyType: DeviceKeyType;
  validityDays?: string;
}

/** Creates `path` with `mode`, never replacing an existing file (a device key is not overwritten). */
async function writeNew(path: string, contents: string, mode: number): Promise<void> {
  let handle;
  try {
    handle = await open(path, 'wx', mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new HintError(`${path} exists; move it away or choose another --out-dir`);
    throw e;
  }
  try {
    await handle.writeFile(contents);
  } finally {
    await handle.close();
  }
}

export function registerCerts(program: Command, io: CliIo): void {
  const certs = program.command('certs').description('device certificates issued by Keyway\'s intermediate CAs');

  withApiContext(certs.command('issue'))
    .description('issue a device certificate from a CSR (--csr), or make a key and CSR here for --device')
    .requiredOption('--ca <id>', 'the intermediate CA that issues it')
    .option('--csr <file>', 'the device\'s PKCS#10 request (PEM)')
    .option('--device <id>', 'device id: the certificate\'s subject CN')
    .option('--out <file>', 'with --csr: write the certificate with its intermediate here (default: the certificate alone on stdout)')
    .option(
      '--out-dir <dir>',
      'without --csr: where <device>.key, <device>.crt (with its intermediate, as the device presents it) and <device>-chain.pem (the issuers, up to the root) go',
      '.',
    )
    .addOption(new Option('--key-type <type>', 'without --csr: the key to make').choices(['ec-p256', 'rsa-2048']).default('ec-p256'))
    .option('--validity-days <days>', 'validity in days (default 365)')
    .action(async (f: IssueFlags, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      if (!f.csr && !f.device) throw new UsageError('give --csr FILE, or --device ID to have a key and CSR made here');
      if (f.validityDays !== undefined && !/^[1-9][0-9]{0,4}$/.test(f.validityDays)) {
        throw new UsageError(`--validity-days: '${f.validityDays}' is not a positive whole number`);
      }
      const shown = (p: string): string => {
        const rel = relative(io.cwd, p);
        return rel && !rel.startsWith('..') ? `./${rel}` : p;
      };
      const client = await ctx.client();
      const location = await ctx.location();
      const request = (csr: string) => ({
        csr,
        ...(f.device ? { deviceId: f.device } : {}),
        ...(f.validityDays ? { validityDays: Number(f.validityDays) } : {}),
      });

      // What a device presents in its TLS handshake: its certificate, then the intermediates (the
      // root, last in the chain, is what the registry trusts). Registering it needs the same.
      const presented = (issued: { certificate: string; chain: readonly string[] }): string =>
        [issued.certificate, ...issued.chain.slice(0, -1)].map((c) => `${c.trimEnd()}\n`).join('');

      if (f.csr) {
        const csr = (await readInputFile(ctx, '--csr', f.csr)).toString('utf8');
        const issued = await client.issueCertificate(location, f.ca, request(csr));
        if (f.out) {
          await writeFile(ctx.path(f.out), presented(issued), { mode: 0o644 });
          out.status(`Issued certificate ${issued.serialNumber} for [${issued.subject}]; wrote it with its intermediate to ${f.out}.`);
        } else if (out.format === 'default') {
          io.stdout(`${issued.certificate.trimEnd()}\n`);
          out.status(`Issued certificate ${issued.serialNumber} for [${issued.subject}].`);
        }
        if (out.format !== 'default') out.resource(issued);
        return;
      }

      const device = f.device as string;
      if (!/^[a-zA-Z][-a-zA-Z0-9._+~%]{2,254}$/.test(device)) throw new UsageError(`--device: '${device}' is not a valid device id`);
      const dir = ctx.path(f.outDir ?? '.');
      await mkdir(dir, { recursive: true });
      const keyPath = join(dir, `${device}.key`);
      const certPath = join(dir, `${device}.crt`);
      const chainPath = join(dir, `${device}-chain.pem`);
      const made = await deviceKeyAndCsr(device, f.keyType);
      // The key is written before the request leaves, so a certificate never exists without it.
      await writeNew(keyPath, made.privateKeyPem, 0o600);
      const issued = await client.issueCertificate(location, f.ca, request(made.csrPem));
      await writeFile(certPath, presented(issued), { mode: 0o644 });
      await writeFile(chainPath, issued.chain.map((c) => `${c.trimEnd()}\n`).join(''), { mode: 0o644 });
      if (out.format !== 'default') {
        out.resource({ ...issued, keyPath, certificatePath: certPath, chainPath });
        return;
      }
      out.status(`Issued certificate ${issued.serialNumber} for [${device}].`);
      out.status(`Wrote ${shown(keyPath)} (mode 0600, keep it on the device), ${shown(certPath)} and ${shown(chainPath)}.`);
    });

  withApiContext(certs.command('revoke'))
    .description('revoke a device certificate by serial number; live connections using it end')
    .requiredOption('--ca <id>', 'the CA that issued it')
    .requiredOption('--serial <hex>', 'its serial number (hex)')
    .option('--reason <reason>', 'key-compromise, superseded, affiliation-changed, …')
    .action(async (f: { ca: string; serial: string; reason?: string }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const r = await (await ctx.client()).revokeCertificate(await ctx.location(), f.ca, f.serial, reasonFlag(f.reason));
      out.status(`Revoked certificate ${r.serialNumber} of [${f.ca}] (${r.revokeReason ?? 'UNSPECIFIED'}).`);
      if (out.format !== 'default') out.resource(r);
    });
}
