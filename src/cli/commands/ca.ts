/** `keyway ca create-root|create-intermediate|list|describe|revoke|crl`: Keyway's own certificate authorities. */
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { ApiCertificateAuthority } from '../../api/authority-wire.js';
import { scopeOf, withApiContext } from '../command-kit.js';
import { UsageError, type CliIo } from '../io.js';

/** `key-compromise` or `KEY_COMPROMISE`; the API checks the value. */
export const reasonFlag = (reason: string | undefined): string | undefined =>
  reason === undefined ? undefined : reason.trim().toUpperCase().replace(/-/g, '_');

function positiveInt(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9][0-9]{0,5}$/.test(value)) throw new UsageError(`${flag}: '${value}' is not a positive whole number`);
  return Number(value);
}

/** A CA id from a batch name: `int-` and the name with anything unusual turned into dashes. */
const defaultIntermediateId = (batch: string): string => `int-${batch.replace(/[^A-Za-z0-9._-]+/g, '-')}`.slice(0, 63);

const shortDate = (t: string | undefined): string => (t ?? '').slice(0, 10);

interface CreateFlags {
  id?: string;
  keyAlgorithm?: string;
  validityDays?: string;
  commonName?: string;
}

function created(a: ApiCertificateAuthority): string {
  return `Created certificate authority [${a.id}] (${a.keyAlgorithm}, key ${a.keyCustody === 'PKCS11' ? 'in the PKCS#11 token' : 'encrypted at rest'}).`;
}

export function registerCa(program: Command, io: CliIo): void {
  const ca = program.command('ca').description('Keyway\'s own certificate authorities (root, per-batch intermediates)');

  const withCreateFlags = (cmd: Command): Command =>
    cmd
      .option('--key-algorithm <algorithm>', 'ec-p256 (default), rsa-2048, rsa-3072 or rsa-4096')
      .option('--validity-days <days>', 'validity in days')
      .option('--common-name <cn>', 'subject common name');

  withCreateFlags(withApiContext(ca.command('create-root')))
    .description('create a root CA (default id: root, valid 10 years)')
    .option('--id <id>', 'CA id', 'root')
    .action(async (f: CreateFlags, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const a = await (await ctx.client()).createAuthority(await ctx.location(), {
        id: f.id ?? 'root',
        type: 'ROOT',
        ...(f.keyAlgorithm ? { keyAlgorithm: f.keyAlgorithm } : {}),
        ...(f.validityDays ? { validityDays: positiveInt('--validity-days', f.validityDays) } : {}),
        ...(f.commonName ? { commonName: f.commonName } : {}),
      });
      out.status(created(a));
      if (out.format !== 'default') out.resource(a);
    });

  withCreateFlags(withApiContext(ca.command('create-intermediate')))
    .description('create an intermediate CA signed by the root, for one manufacturing batch (valid 5 years)')
    .requiredOption('--batch <name>', 'the manufacturing batch it signs devices for')
    .option('--id <id>', 'CA id (default: int-<batch>)')
    .option('--root <id>', 'the root CA that signs it', 'root')
    .action(async (f: CreateFlags & { batch: string; root: string }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const a = await (await ctx.client()).createAuthority(await ctx.location(), {
        id: f.id ?? defaultIntermediateId(f.batch),
        type: 'INTERMEDIATE',
        parent: f.root,
        batch: f.batch,
        ...(f.keyAlgorithm ? { keyAlgorithm: f.keyAlgorithm } : {}),
        ...(f.validityDays ? { validityDays: positiveInt('--validity-days', f.validityDays) } : {}),
        ...(f.commonName ? { commonName: f.commonName } : {}),
      });
      out.status(created(a));
      if (out.format !== 'default') out.resource(a);
    });

  withApiContext(ca.command('list'))
    .description('list the CAs of the project and region')
    .action(async (_: unknown, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const all = await (await ctx.client()).listAuthorities(await ctx.location());
      out.list(all, [
        { header: 'ID', value: (a) => a.id },
        { header: 'TYPE', value: (a) => a.type },
        { header: 'STATE', value: (a) => a.state },
        { header: 'PARENT', value: (a) => a.parent?.split('/').pop() },
        { header: 'BATCH', value: (a) => a.batch },
        { header: 'KEY', value: (a) => `${a.keyAlgorithm}/${a.keyCustody}` },
        { header: 'NOT_AFTER', value: (a) => shortDate(a.notAfter) },
      ]);
    });

  withApiContext(ca.command('describe').argument('<id>', 'CA id'))
    .description('show a CA and its certificate')
    .option('--pem', "print only the CA's certificate (PEM), e.g. to give it to a registry or to devices")
    .action(async (id: string, f: { pem?: boolean }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const a = await (await ctx.client()).getAuthority(await ctx.location(), id);
      if (f.pem) io.stdout(`${a.certificate.trimEnd()}\n`);
      else out.resource(a);
    });

  withApiContext(ca.command('revoke').argument('<id>', 'CA id'))
    .description('revoke a CA: it issues nothing more and every certificate under it is refused at once')
    .option('--reason <reason>', 'key-compromise, ca-compromise, superseded, cessation-of-operation, …')
    .action(async (id: string, f: { reason?: string }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const a = await (await ctx.client()).revokeAuthority(await ctx.location(), id, reasonFlag(f.reason));
      out.status(`Revoked certificate authority [${a.id}] (${a.revokeReason ?? 'UNSPECIFIED'}).`);
      if (out.format !== 'default') out.resource(a);
    });

  withApiContext(ca.command('crl').argument('<id>', 'CA id'))
    .description('download the CA\'s current CRL (PEM, or DER with --der)')
    .option('--out <file>', 'write it to a file instead of stdout')
    .option('--der', 'DER instead of PEM')
    .action(async (id: string, f: { out?: string; der?: boolean }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      if (f.der && !f.out) throw new UsageError('--der needs --out FILE (DER is binary)');
      const crl = await (await ctx.client()).crl(await ctx.location(), id, f.der ? 'der' : 'pem');
      if (!f.out) {
        io.stdout(crl.toString('utf8'));
        return;
      }
      await writeFile(ctx.path(f.out), crl, { mode: 0o644 });
      out.status(`Wrote the CRL of [${id}] to ${f.out}.`);
    });
}
