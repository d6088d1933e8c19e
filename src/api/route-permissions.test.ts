/**
 * The route-table permission walk: every route of the admin API, through a real API with real
 * API keys, refuses callers without its permission (403, or 401 without credentials) and admits
 * callers with it (anything but 401/403, usually 404 or 400 for the made-up resources).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ROLE_PERMISSIONS, ROLES, type Permission, type Role, type RoleBinding, type Scope } from '../domain/roles.js';
import { ADMIN_ROUTES, type ApiRoute } from './routes.js';
import { startTestStack, TEST_ADMIN_TOKEN, type TestStack } from './test-stack.js';

const PROJECT = 'demo';
const LOCATION = 'europe-west1';
const REGISTRY = 'fleet';

const concrete = (path: string): string =>
  path
    .replace('{project}', PROJECT)
    .replace('{location}', LOCATION)
    .replace('{registry}', REGISTRY)
    .replace('{device}', 'dev1')
    .replace('{authority}', 'ca1')
    .replace('{fingerprint}', 'a'.repeat(64))
    .replace('{account}', 'nobody')
    .replace('{key}', '0123456789abcdef')
    .replace(/\{(\w+)\}/g, 'x1');

/** The narrowest scope that holds the route's resource. */
function scopeOf(route: ApiRoute): Scope {
  if (route.path.includes('{registry}')) return { kind: 'registry', project: PROJECT, location: LOCATION, registry: REGISTRY };
  if (route.path.includes('{project}')) return { kind: 'project', project: PROJECT };
  return { kind: 'global' };
}

/** Scopes that do not hold the route's resource, where a caller may have every permission. */
function otherScopes(route: ApiRoute): Scope[] {
  const scope = scopeOf(route);
  if (scope.kind === 'global') return [{ kind: 'project', project: PROJECT }];
  const others: Scope[] = [{ kind: 'project', project: 'elsewhere' }];
  if (scope.kind === 'registry') {
    others.push({ kind: 'registry', project: PROJECT, location: LOCATION, registry: 'other-fleet' });
    others.push({ kind: 'registry', project: PROJECT, location: 'us-central1', registry: REGISTRY });
  }
  return others;
}

describe('route-table permission walk', () => {
  let stack: TestStack;
  let serial = 0;
  const keys = new Map<string, string>();

  /** An API key of a fresh account holding exactly these bindings. */
  async function keyFor(bindings: readonly RoleBinding[]): Promise<string> {
    const cacheKey = JSON.stringify(bindings);
    const cached = keys.get(cacheKey);
    if (cached) return cached;
    const id = `walker-${++serial}`;
    // An account lives in the project of its bindings.
    const home = bindings.map((b) => (b.scope.kind === 'global' ? undefined : b.scope.project)).find((p) => p) ?? PROJECT;
    await stack.accounts.create(home, id, { bindings }, { kind: 'bootstrap' });
    const { key } = await stack.accounts.createKey(home, id);
    keys.set(cacheKey, key);
    return key;
  }

  const call = (route: ApiRoute, token: string | undefined) =>
    stack.api.inject({
      method: route.method,
      url: concrete(route.path),
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
      ...(route.method === 'POST' || route.method === 'PATCH' ? { payload: {} } : {}),
    });

  before(async () => {
    stack = await startTestStack();
  });
  after(async () => {
    await stack.close();
  });

  it('every route declares a permission', () => {
    for (const route of ADMIN_ROUTES) assert.ok(route.permission, `${route.operationId} declares no permission`);
  });

  for (const route of ADMIN_ROUTES) {
    it(`${route.method} ${route.path} (${route.permission})`, async () => {
      if (route.permission === 'public') {
        assert.equal((await call(route, undefined)).statusCode, 200);
        return;
      }
      const anonymous = await call(route, undefined);
      assert.equal(anonymous.statusCode, 401, `anonymous ${route.operationId}: ${anonymous.body}`);
      const forged = await call(route, 'kwk_0123456789abcdef_' + 'A'.repeat(43));
      assert.equal(forged.statusCode, 401, `forged key on ${route.operationId}`);
      const bootstrap = await call(route, TEST_ADMIN_TOKEN);
      assert.ok(![401, 403].includes(bootstrap.statusCode), `bootstrap admin on ${route.operationId}: ${bootstrap.body}`);

      if (route.permission === 'authenticated') {
        const nobody = await call(route, await keyFor([]));
        assert.ok(![401, 403].includes(nobody.statusCode), `role-less caller on ${route.operationId}: ${nobody.body}`);
        return;
      }
      const permission: Permission = route.permission;
      const scope = scopeOf(route);

      // Lacking: every role without the permission, on the right scope.
      const without = ROLES.filter((r) => !ROLE_PERMISSIONS[r].has(permission));
      if (without.length > 0) {
        const r = await call(route, await keyFor(without.map((role) => ({ role, scope }))));
        assert.equal(r.statusCode, 403, `roles ${without.join(',')} on ${route.operationId}: ${r.body}`);
        assert.equal((JSON.parse(r.body) as { error: { status: string } }).error.status, 'PERMISSION_DENIED');
      }
      // Lacking: every role, but on scopes that do not hold the resource.
      for (const other of otherScopes(route)) {
        const r = await call(route, await keyFor(ROLES.map((role) => ({ role, scope: other }))));
        assert.equal(r.statusCode, 403, `all roles on another scope (${JSON.stringify(other)}) on ${route.operationId}: ${r.body}`);
      }
      // Having: each role with the permission, alone, on the narrowest scope.
      const withIt: Role[] = ROLES.filter((r) => ROLE_PERMISSIONS[r].has(permission));
      assert.ok(withIt.includes('admin'), `admin lacks ${permission}`);
      for (const role of withIt) {
        const r = await call(route, await keyFor([{ role, scope }]));
        assert.ok(![401, 403].includes(r.statusCode), `${role} on ${route.operationId}: ${r.statusCode} ${r.body}`);
      }
    });
  }
});
