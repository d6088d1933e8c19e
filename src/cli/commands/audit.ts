/** `keyway audit list|export|verify`: the hash-chained audit log. */
import { open } from 'node:fs/promises';
import type { Command } from 'commander';
import type { ApiAuditEntry } from '../../api/audit-routes.js';
import type { AdminClient, AuditListOptions } from '../../api/client.js';
import { scopeOf, withApiContext } from '../command-kit.js';
import type { CliContext } from '../context.js';
import { HintError, UsageError, type CliIo } from '../io.js';

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PAGE = 1000;

/** `90s`, `30m`, `1h`, `7d` ago, or an RFC 3339 timestamp, as RFC 3339. */
export function timeFlag(flag: string, text: string, now = Date.now()): string {
  const m = /^(\d{1,6})([smhd])$/.exec(text.trim());
  if (m) return new Date(now - Number(m[1]) * (UNIT_MS[m[2] as string] ?? 0)).toISOString();
  const t = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(text) || Number.isNaN(t)) {
    throw new UsageError(`${flag}: '${text}' is neither a duration such as 30m, 1h or 7d nor an RFC 3339 time such as 2024-01-31T12:00:00Z`);
  }
  return new Date(t).toISOString();
}

interface FilterFlags {
  since?: string;
  until?: string;
  device?: string;
  registry?: string;
  actor?: string;
  outcome?: string;
  kind?: string;
}

const withFilters = (cmd: Command): Command =>
  cmd
    .option('--since <when>', 'entries from this long ago (30m, 1h, 7d) or this RFC 3339 time')
    .option('--until <when>', 'entries before this long ago or this RFC 3339 time')
    .option('--device <device>', 'entries of a device: its full name, or its id with --registry')
    .option('--registry <id>', 'registry of --device')
    .option('--actor <actor>', 'entries by this actor (admin, a device name, backend:<client id>)')
    .option('--outcome <outcome>', 'allowed, denied, ok or error')
    .option('--kind <kind>', 'device.authenticate, device.authorize, admin.request, revocation, …');

async function filtersOf(ctx: CliContext, f: FilterFlags): Promise<AuditListOptions> {
  let device: string | undefined;
  if (f.device !== undefined) {
    if (f.device.startsWith('projects/')) device = f.device;
    else if (f.registry === undefined) throw new UsageError('--device: give the device\'s full name, or its id with --registry');
    else {
      const d = await ctx.device(f.registry, f.device);
      device = `projects/${d.project}/locations/${d.location}/registries/${d.registry}/devices/${d.device}`;
    }
  }
  return {
    ...(f.since !== undefined ? { start: timeFlag('--since', f.since) } : {}),
    ...(f.until !== undefined ? { end: timeFlag('--until', f.until) } : {}),
    ...(device !== undefined ? { device } : {}),
    ...(f.actor !== undefined ? { actor: f.actor } : {}),
    ...(f.outcome !== undefined ? { outcome: f.outcome } : {}),
    ...(f.kind !== undefined ? { kind: f.kind } : {}),
  };
}

/** Every matching entry, page by page, handed to `each` without holding them all. */
async function forEachEntry(client: AdminClient, filters: AuditListOptions, each: (entries: ApiAuditEntry[]) => Promise<void> | void, limit = Infinity): Promise<void> {
  let pageToken: string | undefined;
  let seen = 0;
  do {
    const page = await client.listAuditEntries({ ...filters, pageSize: Math.min(PAGE, limit - seen), ...(pageToken ? { pageToken } : {}) });
    const entries = page.entries ?? [];
    seen += entries.length;
    await each(entries);
    pageToken = page.nextPageToken;
  } while (pageToken !== undefined && seen < limit);
}

/** One line per entry: what a person scans for. */
const summary = (e: ApiAuditEntry): string | undefined => {
  const d = e.details as { count?: number; aggregated?: boolean; status?: number } | undefined;
  if (d?.aggregated) return `×${d.count ?? '?'}`;
  return d?.status !== undefined ? String(d.status) : undefined;
};

export function registerAudit(program: Command, io: CliIo): void {
  const audit = program.command('audit').description('the tamper-evident audit log: authentications, denials, admin actions, revocations');

  withFilters(withApiContext(audit.command('list')))
    .description('list audit entries, oldest first')
    .option('--limit <n>', 'at most this many entries', '1000')
    .action(async (f: FilterFlags & { limit: string }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      if (!/^[1-9][0-9]{0,6}$/.test(f.limit)) throw new UsageError(`--limit: '${f.limit}' is not a positive whole number`);
      const filters = await filtersOf(ctx, f);
      const client = await ctx.client();
      const all: ApiAuditEntry[] = [];
      await forEachEntry(client, filters, (entries) => void all.push(...entries), Number(f.limit));
      out.list(all, [
        { header: 'SEQ', value: (e) => String(e.sequence) },
        { header: 'TIME', value: (e) => e.time },
        { header: 'KIND', value: (e) => e.kind },
        { header: 'OUTCOME', value: (e) => e.outcome },
        { header: 'ACTOR', value: (e) => e.actor },
        { header: 'SUBJECT', value: (e) => e.subject },
        { header: 'INFO', value: summary },
        { header: 'REASON', value: (e) => e.reason },
      ]);
    });

  withFilters(withApiContext(audit.command('export')))
    .description('write audit entries as JSON lines (one entry per line, hashes included)')
    .requiredOption('--out <file>', 'the file to write (mode 0600; replaced if it exists)')
    .action(async (f: FilterFlags & { out: string }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const filters = await filtersOf(ctx, f);
      const client = await ctx.client();
      const file = await open(ctx.path(f.out), 'w', 0o600);
      let count = 0;
      try {
        await forEachEntry(client, filters, async (entries) => {
          if (entries.length === 0) return;
          await file.writeFile(entries.map((e) => `${JSON.stringify(e)}\n`).join(''));
          count += entries.length;
        });
      } finally {
        await file.close();
      }
      out.status(`Exported ${count} audit entries to ${f.out}.`);
    });

  withApiContext(audit.command('verify'))
    .description('walk the hash chain: fails, naming the first bad entry, if an entry was changed, removed or reordered')
    .action(async (_: unknown, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const result = await (await ctx.client()).verifyAudit();
      if (result.ok) {
        out.status(`Audit log intact: ${result.checked} entries verified.`);
        if (out.format !== 'default') out.resource(result);
        return;
      }
      if (result.firstBad?.entry) out.resource(out.format === 'default' ? result.firstBad.entry : result);
      throw new HintError(
        `the audit log is broken at entry ${result.firstBad?.sequence ?? '?'}: ${result.firstBad?.message ?? 'unknown problem'} (${result.checked} entries before it verified)`,
      );
    });
}
