/**
 * Operator roles in the spirit of Cloud IoT Core IAM (reference §3.7): a role is a fixed set of
 * permissions, granted to a service account by a binding whose scope is one project, one registry,
 * or (granted only by the bootstrap admin) every project. Pure data and checks; the API maps its
 * routes onto these permissions and the broker asks which registries a caller reaches.
 */
import { fieldError } from './errors.js';
import { isLocationId, isProjectId, isResourceId } from './names.js';

export const PERMISSIONS = [
  'registries.get',
  'registries.list',
  'registries.create',
  'registries.update',
  'registries.delete',
  'registries.uploadCrl',
  'devices.get',
  'devices.list',
  'devices.create',
  'devices.update',
  'devices.delete',
  'devices.updateConfig',
  'devices.sendCommand',
  /** Patching only `blocked`. */
  'devices.block',
  /** Patching only `credentials`. */
  'devices.updateCredentials',
  /** Binding a device to a gateway, and unbinding it (Cloud IoT Core's cloudiot.devices.bindGateway / unbindGateway). */
  'devices.bindGateway',
  'devices.unbindGateway',
  'deviceCertificates.get',
  'deviceCertificates.list',
  'deviceCertificates.create',
  'deviceCertificates.updateState',
  'deviceCertificates.delete',
  'authorities.get',
  'authorities.list',
  'authorities.getCrl',
  'authorities.create',
  'authorities.revoke',
  'authorities.issueCertificate',
  'authorities.revokeCertificate',
  'policies.get',
  'policies.list',
  'policies.create',
  'policies.update',
  'policies.delete',
  'policies.attach',
  'policies.simulate',
  'audit.entries.list',
  'audit.verify',
  'serviceAccounts.get',
  'serviceAccounts.list',
  'serviceAccounts.create',
  'serviceAccounts.update',
  'serviceAccounts.delete',
  'serviceAccounts.keys.create',
  'serviceAccounts.keys.list',
  'serviceAccounts.keys.delete',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

export const ROLES = ['viewer', 'deviceController', 'provisioner', 'editor', 'securityAdmin', 'admin'] as const;
export type Role = (typeof ROLES)[number];

const VIEWER: readonly Permission[] = [
  'registries.get',
  'registries.list',
  'devices.get',
  'devices.list',
  'deviceCertificates.get',
  'deviceCertificates.list',
  'authorities.get',
  'authorities.list',
  'authorities.getCrl',
  'policies.get',
  'policies.list',
];
const DEVICE_CONTROLLER: readonly Permission[] = [...VIEWER, 'devices.updateConfig', 'devices.sendCommand', 'devices.block'];
const PROVISIONER: readonly Permission[] = [
  ...VIEWER,
  'devices.create',
  'devices.updateCredentials',
  'devices.bindGateway',
  'devices.unbindGateway',
  'deviceCertificates.create',
  'authorities.issueCertificate',
];
const EDITOR: readonly Permission[] = [
  ...DEVICE_CONTROLLER,
  ...PROVISIONER,
  'registries.create',
  'registries.update',
  'registries.delete',
  'registries.uploadCrl',
  'devices.update',
  'devices.delete',
  'deviceCertificates.delete',
];
const SECURITY_ADMIN: readonly Permission[] = [
  ...VIEWER,
  'registries.uploadCrl',
  'deviceCertificates.updateState',
  'deviceCertificates.delete',
  'authorities.create',
  'authorities.revoke',
  'authorities.issueCertificate',
  'authorities.revokeCertificate',
  'policies.create',
  'policies.update',
  'policies.delete',
  'policies.attach',
  'policies.simulate',
  'audit.entries.list',
  'audit.verify',
];

export const ROLE_PERMISSIONS: Readonly<Record<Role, ReadonlySet<Permission>>> = {
  viewer: new Set(VIEWER),
  deviceController: new Set(DEVICE_CONTROLLER),
  provisioner: new Set(PROVISIONER),
  editor: new Set(EDITOR),
  securityAdmin: new Set(SECURITY_ADMIN),
  admin: new Set(PERMISSIONS),
};

export const isRole = (s: unknown): s is Role => typeof s === 'string' && (ROLES as readonly string[]).includes(s);

/** What a binding covers: every project, one project, or one registry. */
export type Scope =
  | { readonly kind: 'global' }
  | { readonly kind: 'project'; readonly project: string }
  | { readonly kind: 'registry'; readonly project: string; readonly location: string; readonly registry: string };

export interface RoleBinding {
  readonly role: Role;
  readonly scope: Scope;
}

/** The resource a request acts on: nothing narrower than global when the path names no project. */
export interface ResourceRef {
  readonly project?: string;
  readonly location?: string;
  readonly registry?: string;
}

export const GLOBAL_SCOPE = '*';

export function formatScope(s: Scope): string {
  switch (s.kind) {
    case 'global':
      return GLOBAL_SCOPE;
    case 'project':
      return `projects/${s.project}`;
    case 'registry':
      return `projects/${s.project}/locations/${s.location}/registries/${s.registry}`;
  }
}

/** `*`, `projects/{p}` or `projects/{p}/locations/{l}/registries/{r}`. */
export function parseScope(text: string, field: string): Scope {
  if (text === GLOBAL_SCOPE) return { kind: 'global' };
  const parts = text.split('/');
  const at = (i: number): string => parts[i] ?? '';
  if (parts.length === 2 && parts[0] === 'projects' && isProjectId(at(1))) return { kind: 'project', project: at(1) };
  if (
    parts.length === 6 &&
    parts[0] === 'projects' &&
    parts[2] === 'locations' &&
    parts[4] === 'registries' &&
    isProjectId(at(1)) &&
    isLocationId(at(3)) &&
    isResourceId(at(5))
  ) {
    return { kind: 'registry', project: at(1), location: at(3), registry: at(5) };
  }
  throw fieldError(field, `'${text}' is not a scope: use '*', 'projects/{project}' or 'projects/{project}/locations/{location}/registries/{registry}'`);
}

/** True when the scope contains the resource. */
export function scopeCovers(scope: Scope, resource: ResourceRef): boolean {
  if (scope.kind === 'global') return true;
  if (resource.project !== scope.project) return false;
  if (scope.kind === 'project') return true;
  return resource.location === scope.location && resource.registry === scope.registry;
}

/** True when one of the bindings grants the permission on the resource. */
export function bindingsAllow(bindings: readonly RoleBinding[], permission: Permission, resource: ResourceRef): boolean {
  return bindings.some((b) => ROLE_PERMISSIONS[b.role].has(permission) && scopeCovers(b.scope, resource));
}

/**
 * What the bindings let a caller read in the backend MQTT namespace: every registry (`all`), or
 * the projects and the registries where it holds `registries.get`.
 */
export interface RegistryReach {
  readonly all: boolean;
  readonly projects: ReadonlySet<string>;
  /** `project/location/registry`. */
  readonly registries: ReadonlySet<string>;
}

export function registryReach(bindings: readonly RoleBinding[]): RegistryReach {
  let all = false;
  const projects = new Set<string>();
  const registries = new Set<string>();
  for (const b of bindings) {
    if (!ROLE_PERMISSIONS[b.role].has('registries.get')) continue;
    if (b.scope.kind === 'global') all = true;
    else if (b.scope.kind === 'project') projects.add(b.scope.project);
    else registries.add(`${b.scope.project}/${b.scope.location}/${b.scope.registry}`);
  }
  return { all, projects, registries };
}

export function reachesRegistry(reach: RegistryReach, project: string, location: string, registry: string): boolean {
  return reach.all || reach.projects.has(project) || reach.registries.has(`${project}/${location}/${registry}`);
}

/** Who made a request: the bootstrap admin (every permission everywhere) or a service account. */
export type Principal =
  | { readonly kind: 'bootstrap' }
  | {
      readonly kind: 'serviceAccount';
      readonly project: string;
      readonly id: string;
      readonly keyId: string;
      readonly bindings: readonly RoleBinding[];
    };

export const BOOTSTRAP_ADMIN: Principal = { kind: 'bootstrap' };

export function principalAllows(principal: Principal, permission: Permission, resource: ResourceRef): boolean {
  return principal.kind === 'bootstrap' || bindingsAllow(principal.bindings, permission, resource);
}

/** The audit log's actor: `admin` or `serviceAccounts/{id}@{project}`. */
export function principalName(principal: Principal): string {
  return principal.kind === 'bootstrap' ? 'admin' : `serviceAccounts/${principal.id}@${principal.project}`;
}
