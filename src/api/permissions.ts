/**
 * What each admin API route needs, and the decision for a caller. Roles and their permissions are
 * defined in domain/roles.ts (the broker asks them too); here they meet the route table: a route
 * names one permission, checked on the project and registry its path names. A route may also name
 * narrower permissions that suffice for some update masks (a device controller may patch
 * `blocked`, a provisioner `credentials`).
 */
import {
  principalAllows,
  type Permission,
  type Principal,
  type ResourceRef,
} from '../domain/roles.js';

export {
  PERMISSIONS,
  ROLES,
  ROLE_PERMISSIONS,
  type Permission,
  type Principal,
  type Role,
  type RoleBinding,
} from '../domain/roles.js';

/** `public`: no credentials at all; `authenticated`: any valid caller, whatever its roles. */
export type RoutePermission = Permission | 'public' | 'authenticated';

export interface RouteAccess {
  readonly permission: RoutePermission;
  /** Update-mask paths that a narrower permission also allows to change (only those paths). */
  readonly maskPermissions?: Readonly<Record<string, Permission>>;
}

/** The project, location and registry named by a route's path parameters. */
export function resourceOf(params: Readonly<Record<string, string | undefined>>): ResourceRef {
  return {
    ...(params.project !== undefined ? { project: params.project } : {}),
    ...(params.location !== undefined ? { location: params.location } : {}),
    ...(params.registry !== undefined ? { registry: params.registry } : {}),
  };
}

function maskPaths(query: Readonly<Record<string, unknown>>): string[] | undefined {
  const mask = query.updateMask;
  if (typeof mask !== 'string' || mask.trim() === '') return undefined;
  return mask.split(',').map((s) => s.trim());
}

/** True when the caller may make this request. */
export function authorize(
  principal: Principal,
  access: RouteAccess,
  params: Readonly<Record<string, string | undefined>>,
  query: Readonly<Record<string, unknown>>,
): boolean {
  if (access.permission === 'public' || access.permission === 'authenticated') return true;
  const resource = resourceOf(params);
  if (principalAllows(principal, access.permission, resource)) return true;
  const narrower = access.maskPermissions;
  const paths = narrower && maskPaths(query);
  if (!narrower || !paths) return false;
  return paths.every((p) => Object.hasOwn(narrower, p) && principalAllows(principal, narrower[p] as Permission, resource));
}
