/**
 * `keyway policies …`: device policies of a registry — documents, versions, attachments — plus
 * `lint` (offline: it needs only the policy engine) and `test` (the server's dry run).
 */
import type { Command } from 'commander';
import type { ApiPolicyDecision } from '../../api/policy-routes.js';
import { hasLintErrors, lintPolicyDocument, parsePolicyDocument, type PolicyLintFinding } from '../../policy/index.js';
import { readInputFile, scopeOf, withApiContext, withFormat } from '../command-kit.js';
import type { CliContext } from '../context.js';
import { HintError, UsageError, type CliIo } from '../io.js';
import { Printer, type OutputFormat } from '../output.js';

async function readDocument(ctx: CliContext, file: string): Promise<unknown> {
  const text = (await readInputFile(ctx, '--document-file', file)).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UsageError(`--document-file: ${file} is not JSON: ${(e as Error).message}`);
  }
}

function printFindings(out: Printer, findings: readonly PolicyLintFinding[]): void {
  out.list(findings, [
    { header: 'SEVERITY', value: (f) => f.severity },
    { header: 'CODE', value: (f) => f.code },
    { header: 'STATEMENT', value: (f) => (f.sid !== undefined ? `${f.statement} (${f.sid})` : String(f.statement)) },
    { header: 'MESSAGE', value: (f) => f.message },
  ]);
}

interface TargetFlags {
  device?: string;
  deviceType?: string;
  registryWide?: boolean;
}

function targetOf(f: TargetFlags): Record<string, unknown> {
  const given = [f.device !== undefined, f.deviceType !== undefined, f.registryWide === true].filter(Boolean).length;
  if (given !== 1) throw new UsageError('give exactly one of --device, --device-type or --registry-wide');
  if (f.registryWide) return { registry: true };
  return f.device !== undefined ? { deviceId: f.device } : { deviceType: f.deviceType };
}

const withTarget = (cmd: Command): Command =>
  cmd
    .option('--device <device>', 'one device (id or numeric id)')
    .option('--device-type <type>', "every device whose metadata 'type' is this value")
    .option('--registry-wide', 'every device of the registry');

function positiveInt(flag: string, text: string): number {
  if (!/^[1-9][0-9]{0,8}$/.test(text)) throw new UsageError(`${flag}: '${text}' is not a positive whole number`);
  return Number(text);
}

const decisionLine = (d: ApiPolicyDecision): string => {
  if (d.reason === 'IMPLICIT_DENY') return 'DENIED: no statement allows it (implicit deny)';
  const s = d.statement;
  const by = s ? `${s.policy} v${s.version} statement ${s.statement}${s.sid ? ` (${s.sid})` : ''}: ${s.effect} '${s.resource}' → '${s.resolved}'` : '';
  return `${d.allowed ? 'ALLOWED' : 'DENIED'} by ${by}`;
};

export function registerPolicies(program: Command, io: CliIo): void {
  const policies = program.command('policies').description('device policies: what each device may connect, publish, subscribe to and receive');
  const reg = (cmd: Command): Command => cmd.requiredOption('--registry <id>', 'the registry');

  reg(withApiContext(policies.command('create').argument('<id>', 'policy id')))
    .description('create a policy; its document becomes version 1, the default')
    .requiredOption('--document-file <file>', 'the policy document (JSON)')
    .option('--force', 'store it even though lint finds errors')
    .action(async (id: string, f: { registry: string; documentFile: string; force?: boolean }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const document = await readDocument(ctx, f.documentFile);
      const policy = await (await ctx.client()).createPolicy(await ctx.registry(f.registry), id, document, f.force === true);
      out.resource(policy);
    });

  reg(withApiContext(policies.command('list')))
    .description("list the registry's policies")
    .action(async (f: { registry: string }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const list = await (await ctx.client()).listPolicies(await ctx.registry(f.registry));
      out.list(list, [
        { header: 'ID', value: (p) => p.id },
        { header: 'DEFAULT_VERSION', value: (p) => String(p.defaultVersion) },
        { header: 'UPDATED', value: (p) => p.updateTime },
      ]);
    });

  reg(withApiContext(policies.command('describe').argument('<id>', 'policy id')))
    .description('show a policy with its default document and attachments')
    .action(async (id: string, f: { registry: string }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const client = await ctx.client();
      const r = await ctx.registry(f.registry);
      const [policy, attachments] = await Promise.all([client.getPolicy(r, id), client.listPolicyAttachments(r, id)]);
      out.resource({ ...policy, attachments });
    });

  reg(withApiContext(policies.command('delete').argument('<id>', 'policy id')))
    .description('delete a policy and its versions (refused while attached)')
    .action(async (id: string, f: { registry: string }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      await (await ctx.client()).deletePolicy(await ctx.registry(f.registry), id);
      out.status(`Deleted policy ${id}.`);
    });

  const versions = policies.command('versions').description('versions of a policy (at most 5 kept)');
  reg(withApiContext(versions.command('create').argument('<id>', 'policy id')))
    .description('add a version of a policy')
    .requiredOption('--document-file <file>', 'the policy document (JSON)')
    .option('--set-as-default', 'make it the default at once (live connections follow within a second)')
    .option('--force', 'store it even though lint finds errors')
    .action(async (id: string, f: { registry: string; documentFile: string; setAsDefault?: boolean; force?: boolean }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const document = await readDocument(ctx, f.documentFile);
      const v = await (await ctx.client()).createPolicyVersion(await ctx.registry(f.registry), id, document, {
        ...(f.setAsDefault ? { setAsDefault: true } : {}),
        ...(f.force ? { force: true } : {}),
      });
      out.resource(v);
    });
  reg(withApiContext(versions.command('list').argument('<id>', 'policy id')))
    .description('list the kept versions, oldest first')
    .action(async (id: string, f: { registry: string }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const list = await (await ctx.client()).listPolicyVersions(await ctx.registry(f.registry), id);
      out.list(list, [
        { header: 'VERSION', value: (v) => String(v.version) },
        { header: 'DEFAULT', value: (v) => (v.isDefault ? 'yes' : '') },
        { header: 'CREATED', value: (v) => v.createTime },
      ]);
    });
  reg(withApiContext(versions.command('delete').argument('<id>', 'policy id').argument('<version>', 'version number')))
    .description('delete a version that is not the default')
    .action(async (id: string, version: string, f: { registry: string }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      await (await ctx.client()).deletePolicyVersion(await ctx.registry(f.registry), id, positiveInt('<version>', version));
      out.status(`Deleted version ${version} of policy ${id}.`);
    });

  reg(withApiContext(policies.command('set-default-version').argument('<id>', 'policy id').argument('<version>', 'version number')))
    .description('make a kept version the default')
    .action(async (id: string, version: string, f: { registry: string }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      out.resource(await (await ctx.client()).setDefaultPolicyVersion(await ctx.registry(f.registry), id, positiveInt('<version>', version)));
    });

  withTarget(reg(withApiContext(policies.command('attach').argument('<id>', 'policy id'))))
    .description('attach a policy to a device, a device type or the whole registry')
    .action(async (id: string, f: TargetFlags & { registry: string }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const target = targetOf(f);
      out.resource(await (await ctx.client()).attachPolicy(await ctx.registry(f.registry), id, target));
    });
  withTarget(reg(withApiContext(policies.command('detach').argument('<id>', 'policy id'))))
    .description('detach a policy from a device, a device type or the whole registry')
    .action(async (id: string, f: TargetFlags & { registry: string }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const target = targetOf(f);
      await (await ctx.client()).detachPolicy(await ctx.registry(f.registry), id, target);
      out.status(`Detached policy ${id}.`);
    });

  // Offline: the policy engine is pure, so no server, token or registry is needed.
  withFormat(policies.command('lint'))
    .description('check a document for over-permissive grants (exit status 1 on errors); works offline')
    .requiredOption('--document-file <file>', 'the policy document (JSON)')
    .action(async (f: { documentFile: string; format?: OutputFormat }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const text = (await readInputFile(ctx, '--document-file', f.documentFile)).toString('utf8');
      const findings = lintPolicyDocument(parsePolicyDocument(text, 'document'));
      if (findings.length === 0 && out.format === 'default') out.status('No findings.');
      else printFindings(out, findings);
      if (hasLintErrors(findings)) {
        throw new HintError(`${findings.filter((x) => x.severity === 'error').length} lint error(s) in ${f.documentFile}`);
      }
    });

  reg(withApiContext(policies.command('test')))
    .description('dry run: would the device be allowed the action on the topic, and by which statement')
    .requiredOption('--device <device>', 'device id or numeric id')
    .requiredOption('--action <action>', 'connect, publish, subscribe, receive or retain')
    .requiredOption('--topic <topic>', 'topic name (a filter for subscribe; the device id for connect)')
    .option('--certificate <fingerprint>', 'resolve ${cert.subject.*} from this registered certificate of the device')
    .action(async (f: { registry: string; device: string; action: string; topic: string; certificate?: string }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const decision = await (await ctx.client()).testDevicePolicy(await ctx.device(f.registry, f.device), {
        action: f.action,
        resource: f.topic,
        ...(f.certificate !== undefined ? { certificateFingerprint: f.certificate } : {}),
      });
      if (out.format !== 'default') out.resource(decision);
      else {
        io.stdout(`${decisionLine(decision)}\n`);
        for (const u of decision.unresolved ?? [])
          out.status(`note: ${u.policy} statement ${u.statement} '${u.resource}' matches nothing here: \${${u.variable}} ${u.problem}`);
      }
    });
}
