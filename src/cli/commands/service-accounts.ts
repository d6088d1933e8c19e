/**
 * `keyway service-accounts …`: identities for backends and operators in a project, their roles and
 * API keys. A key is printed once, by `keys create`, to stdout (so it can be piped into a file);
 * everything else prints key ids, expiry and last use only. `public-keys …` registers the public
 * halves of keys a backend signs its own JWTs with, and `token` signs one locally.
 */
import { createPublicKey } from 'node:crypto';
import type { Command } from 'commander';
import type { ApiServiceAccount, ApiServiceAccountKey, ApiServicePublicKey } from '../../api/client.js';
import { ROLES } from '../../domain/roles.js';
import { SERVICE_JWT_MAX_LIFETIME_SECONDS, signServiceJwt } from '../../identity/service-jwt.js';
import { parseDuration } from '../arg-parsers.js';
import { collect, readInputFile, scopeOf, withApiContext, withDataDir } from '../command-kit.js';
import type { CliContext } from '../context.js';
import { UsageError, type CliIo } from '../io.js';

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `90d`, `12h`, `30m`, `3600s` or bare seconds. */
export function parseKeyLifetime(text: string): number {
  const m = /^(\d{1,6})([smhd]?)$/.exec(text.trim());
  if (!m) throw new UsageError(`--expires-in: '${text}' is not a duration such as 90d, 12h or 30m`);
  const seconds = Number(m[1]) * (DURATION_UNITS[m[2] || 's'] ?? 1);
  if (seconds < 1) throw new UsageError('--expires-in: must be at least 1s');
  return seconds;
}

/**
 * `ROLE` (on the project), `ROLE:registry=R` (one registry of the region) or `ROLE:all` (every
 * project; only the bootstrap admin may grant it), as the API's `{role, scope}`.
 */
export async function parseRoleFlag(ctx: CliContext, text: string): Promise<{ role: string; scope: string }> {
  const [role = '', scope, ...rest] = text.split(':');
  if (!(ROLES as readonly string[]).includes(role) || rest.length > 0) {
    throw new UsageError(`--role: '${text}' is not ROLE[:registry=REGISTRY|:all] with ROLE one of ${ROLES.join(', ')}`);
  }
  const project = await ctx.setting('project');
  if (scope === undefined || scope === 'project') return { role, scope: `projects/${project}` };
  if (scope === 'all') return { role, scope: '*' };
  const registry = /^registry=(.+)$/.exec(scope)?.[1];
  if (registry === undefined) throw new UsageError(`--role: '${scope}' is not a scope: use registry=REGISTRY or all`);
  return { role, scope: `projects/${project}/locations/${await ctx.setting('region')}/registries/${registry}` };
}

/** The API format of a public key or certificate PEM, from the key it holds (the server checks it again). */
export function publicKeyFormatOf(pem: string): string {
  const certificate = /-----BEGIN CERTIFICATE-----/.test(pem);
  let type: string | undefined;
  try {
    type = createPublicKey(pem).asymmetricKeyType;
  } catch {
    throw new UsageError('--public-key-file: not a PEM public key or certificate');
  }
  if (type === 'ec') return certificate ? 'ES256_X509_PEM' : 'ES256_PEM';
  if (type === 'rsa') return certificate ? 'RSA_X509_PEM' : 'RSA_PEM';
  throw new UsageError(`--public-key-file: a ${type ?? 'unknown'} key; use an RSA (RS256) or P-256 (ES256) key`);
}

const rolesColumn = (a: ApiServiceAccount): string => (a.bindings ?? []).map((b) => `${b.role}@${b.scope}`).join(', ') || '-';

export function registerServiceAccounts(program: Command, io: CliIo): void {
  const accounts = program
    .command('service-accounts')
    .description('service accounts: identities with roles and API keys for backends (MQTT) and operators (admin API)');
  const roleOption = (cmd: Command): Command =>
    cmd.option('--role <role>', `a role binding, repeatable: ROLE (on the project), ROLE:registry=REGISTRY or ROLE:all; ROLE one of ${ROLES.join(', ')}`, collect);

  roleOption(withApiContext(accounts.command('create').argument('<id>', 'service account id')))
    .description('create a service account in the project')
    .option('--display-name <name>', 'a name for people')
    .action(async (id: string, f: { role?: string[]; displayName?: string }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const bindings = await Promise.all((f.role ?? []).map((r) => parseRoleFlag(ctx, r)));
      const created = await (await ctx.client()).createServiceAccount(await ctx.setting('project'), {
        id,
        ...(bindings.length ? { bindings } : {}),
        ...(f.displayName !== undefined ? { displayName: f.displayName } : {}),
      });
      out.resource(created);
      out.status(`Created service account [${id}]. Its MQTT user name is ${await ctx.setting('project')}/${id}; create a key with 'keyway service-accounts keys create ${id}'.`);
    });

  withApiContext(accounts.command('list'))
    .description("list the project's service accounts")
    .action(async (_: unknown, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const list = await (await ctx.client()).listServiceAccounts(await ctx.setting('project'));
      out.list(list, [
        { header: 'ID', value: (a) => a.id },
        { header: 'DISPLAY_NAME', value: (a) => a.displayName ?? '' },
        { header: 'ROLES', value: rolesColumn },
        { header: 'DISABLED', value: (a) => (a.disabled ? 'yes' : '') },
      ]);
    });

  withApiContext(accounts.command('describe').argument('<id>', 'service account id'))
    .description('show a service account')
    .action(async (id: string, _: unknown, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      out.resource(await (await ctx.client()).getServiceAccount(await ctx.setting('project'), id));
    });

  roleOption(withApiContext(accounts.command('update').argument('<id>', 'service account id')))
    .description('replace its role bindings (--role, repeatable), rename it, or disable / enable it')
    .option('--display-name <name>', 'a name for people')
    .option('--disable', 'refuse its keys (API and MQTT) and end its MQTT connections')
    .option('--enable', 'accept its keys again')
    .option('--clear-roles', 'remove every role binding')
    .action(async (id: string, f: { role?: string[]; displayName?: string; disable?: boolean; enable?: boolean; clearRoles?: boolean }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      if (f.disable && f.enable) throw new UsageError('give --disable or --enable, not both');
      if (f.clearRoles && f.role) throw new UsageError('give --role or --clear-roles, not both');
      const mask: string[] = [];
      const body: { displayName?: string; bindings?: Array<{ role: string; scope: string }>; disabled?: boolean } = {};
      if (f.role || f.clearRoles) {
        body.bindings = await Promise.all((f.role ?? []).map((r) => parseRoleFlag(ctx, r)));
        mask.push('bindings');
      }
      if (f.displayName !== undefined) {
        body.displayName = f.displayName;
        mask.push('displayName');
      }
      if (f.disable || f.enable) {
        body.disabled = f.disable === true;
        mask.push('disabled');
      }
      if (mask.length === 0) throw new UsageError('nothing to update: give --role, --clear-roles, --display-name, --disable or --enable');
      out.resource(await (await ctx.client()).updateServiceAccount(await ctx.setting('project'), id, body, mask));
      out.status(`Updated service account [${id}].`);
    });

  withApiContext(accounts.command('delete').argument('<id>', 'service account id'))
    .description('delete a service account and all its keys; its MQTT connections end')
    .action(async (id: string, _: unknown, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      await (await ctx.client()).deleteServiceAccount(await ctx.setting('project'), id);
      out.status(`Deleted service account [${id}].`);
    });

  const keys = accounts.command('keys').description("a service account's API keys");

  withApiContext(keys.command('create').argument('<id>', 'service account id'))
    .description('create an API key and print it, once (default lifetime 90d, at most 366d)')
    .option('--expires-in <duration>', 'lifetime, e.g. 90d, 12h, 30m')
    .action(async (id: string, f: { expiresIn?: string }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const seconds = f.expiresIn === undefined ? undefined : parseKeyLifetime(f.expiresIn);
      const created = await (await ctx.client()).createServiceAccountKey(await ctx.setting('project'), id, seconds);
      if (out.format === 'default') io.stdout(`${created.apiKey ?? ''}\n`);
      else out.resource(created);
      out.status(
        `WARNING: store this API key now: it is shown only this once and cannot be read back. ` +
          `Key id ${created.keyId}${created.expireTime ? `, expires ${created.expireTime}` : ''}.`,
      );
    });

  withApiContext(keys.command('list').argument('<id>', 'service account id'))
    .description("list a service account's keys: ids, expiry and last use, never the keys")
    .action(async (id: string, _: unknown, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const list = await (await ctx.client()).listServiceAccountKeys(await ctx.setting('project'), id);
      out.list(list, [
        { header: 'KEY_ID', value: (k: ApiServiceAccountKey) => k.keyId },
        { header: 'CREATED', value: (k) => k.createTime },
        { header: 'EXPIRES', value: (k) => k.expireTime ?? 'never' },
        { header: 'LAST_USED', value: (k) => k.lastUseTime ?? '-' },
      ]);
    });

  withApiContext(keys.command('revoke').argument('<id>', 'service account id').argument('<keyId>', 'the key id (keys list)'))
    .description('revoke an API key: requests with it are refused and its MQTT connections end')
    .action(async (id: string, keyId: string, _: unknown, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      await (await ctx.client()).deleteServiceAccountKey(await ctx.setting('project'), id, keyId);
      out.status(`Revoked key [${keyId}] of service account [${id}].`);
    });

  const publicKeys = accounts.command('public-keys').description("public keys a service account signs its own JWTs with (at most 3)");

  withApiContext(publicKeys.command('add').argument('<id>', 'service account id'))
    .description('register a public key (RSA ≥ 2048 or P-256, PEM); its private half signs tokens (service-accounts token)')
    .requiredOption('--public-key-file <file>', 'the public key or certificate (PEM); never the private key')
    .option('--expiration-time <time>', 'RFC 3339 time after which tokens it signed are refused')
    .action(async (id: string, f: { publicKeyFile: string; expirationTime?: string }, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const pem = (await readInputFile(ctx, '--public-key-file', f.publicKeyFile)).toString('utf8');
      if (/PRIVATE KEY/.test(pem)) throw new UsageError('--public-key-file: holds a private key; give the public key only');
      const added = await (await ctx.client()).addServiceAccountPublicKey(await ctx.setting('project'), id, { format: publicKeyFormatOf(pem), key: pem }, f.expirationTime);
      out.resource(added);
      out.status(`Added public key [${added.keyId}] to service account [${id}].`);
    });

  withApiContext(publicKeys.command('list').argument('<id>', 'service account id'))
    .description("list a service account's public keys")
    .action(async (id: string, _: unknown, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      const list = await (await ctx.client()).listServiceAccountPublicKeys(await ctx.setting('project'), id);
      out.list(list, [
        { header: 'KEY_ID', value: (k: ApiServicePublicKey) => k.keyId },
        { header: 'FORMAT', value: (k) => k.publicKey.format },
        { header: 'FINGERPRINT', value: (k) => k.fingerprint.slice(0, 16) },
        { header: 'CREATED', value: (k) => k.createTime },
        { header: 'EXPIRES', value: (k) => k.expirationTime ?? 'never' },
      ]);
    });

  withApiContext(publicKeys.command('remove').argument('<id>', 'service account id').argument('<keyId>', 'the key id (public-keys list)'))
    .description('remove a public key: tokens it signed are refused and MQTT connections that used one end')
    .action(async (id: string, keyId: string, _: unknown, cmd: Command) => {
      const { ctx, out } = scopeOf(cmd, io);
      await (await ctx.client()).removeServiceAccountPublicKey(await ctx.setting('project'), id, keyId);
      out.status(`Removed public key [${keyId}] of service account [${id}].`);
    });

  withDataDir(accounts.command('token'))
    .description('print a JWT for a service account, signed locally (an MQTT password or admin API bearer token)')
    .requiredOption('--private-key <file>', 'the private key whose public half is registered on the account (PEM)')
    .requiredOption('--account <id>', 'the service account id (the token subject)')
    .option('--project <project>', 'the audience: the project id (default: $KEYWAY_PROJECT or the remembered one)')
    .option('--lifetime <duration>', 'validity, e.g. 30m, 60m (at most 1h)', '60m')
    .action(async (f: { privateKey: string; account: string; lifetime: string }, cmd: Command) => {
      const { ctx } = scopeOf(cmd, io);
      const lifetimeSeconds = parseDuration('--lifetime', f.lifetime);
      if (lifetimeSeconds > SERVICE_JWT_MAX_LIFETIME_SECONDS) throw new UsageError('--lifetime: service account tokens may not be valid for more than 1h');
      const project = await ctx.setting('project');
      const pem = (await readInputFile(ctx, '--private-key', f.privateKey)).toString('utf8');
      io.stdout(`${await signServiceJwt(pem, { project, account: f.account, lifetimeSeconds })}\n`);
    });
}
