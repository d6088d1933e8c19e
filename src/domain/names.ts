/**
 * Resource names of the Cloud IoT Core model:
 * `projects/{project}/locations/{location}/registries/{registry}/devices/{device}`.
 * Parsing is strict: a name either parses into a typed value or yields a KeywayError.
 */
import { fieldError } from './errors.js';

/** Registry and device ids: `[a-zA-Z][-a-zA-Z0-9._+~%]+`, 3–255 chars, not starting with `goog`. */
const RESOURCE_ID = /^[a-zA-Z][-a-zA-Z0-9._+~%]{2,254}$/;
/** Project ids as GCP allows them, plus upper case (self-hosted tenants are free-form but tame). */
const PROJECT_ID = /^[a-zA-Z][-a-zA-Z0-9_.]{0,62}$/;
const LOCATION_ID = /^[a-z][-a-z0-9]{0,62}$/;
/** A device numeric id as it appears in a path: a positive decimal without leading zeros. */
const NUM_ID = /^[1-9][0-9]{0,19}$/;

export const isResourceId = (id: string): boolean => RESOURCE_ID.test(id) && !id.toLowerCase().startsWith('goog');
export const isProjectId = (id: string): boolean => PROJECT_ID.test(id);
export const isLocationId = (id: string): boolean => LOCATION_ID.test(id);
export const isNumId = (id: string): boolean => NUM_ID.test(id);

export const RESOURCE_ID_RULE =
  'must match [a-zA-Z][-a-zA-Z0-9._+~%]+, be 3 to 255 characters long and not start with "goog"';

export function checkResourceId(field: string, id: string): string {
  if (!isResourceId(id)) throw fieldError(field, `'${id}' ${RESOURCE_ID_RULE}`);
  return id;
}

export interface LocationName {
  readonly project: string;
  readonly location: string;
}

export interface RegistryName extends LocationName {
  readonly registry: string;
}

/**
 * A device as addressed by a caller: `device` is either its id or its numeric id (a path may use
 * either, as in Cloud IoT Core). Resolve it through the store before trusting it as an id.
 */
export interface DeviceName extends RegistryName {
  readonly device: string;
}

export const formatLocation = (n: LocationName): string => `projects/${n.project}/locations/${n.location}`;
export const formatRegistry = (n: RegistryName): string => `${formatLocation(n)}/registries/${n.registry}`;
export const formatDevice = (n: DeviceName): string => `${formatRegistry(n)}/devices/${n.device}`;

/** The registry part of a name alone: a DeviceName is a RegistryName too, with a field the store must not see. */
export const registryOf = (n: RegistryName): RegistryName => ({ project: n.project, location: n.location, registry: n.registry });

function segments(field: string, name: string, expected: readonly string[]): string[] {
  const parts = name.split('/');
  const ok =
    parts.length === expected.length * 2 && expected.every((k, i) => parts[i * 2] === k && parts[i * 2 + 1] !== '');
  if (!ok) {
    const shape = expected.map((k) => `${k}/{${k.replace(/ies$/, 'y').replace(/s$/, '')}}`).join('/');
    throw fieldError(field, `'${name}' is not a resource name of the form ${shape}`);
  }
  return expected.map((_, i) => parts[i * 2 + 1] as string);
}

export function parseLocation(name: string, field = 'parent'): LocationName {
  const [project, location] = segments(field, name, ['projects', 'locations']) as [string, string];
  if (!isProjectId(project)) throw fieldError(field, `'${project}' is not a valid project id`);
  if (!isLocationId(location)) throw fieldError(field, `'${location}' is not a valid location`);
  return { project, location };
}

export function parseRegistry(name: string, field = 'name'): RegistryName {
  const [project, location, registry] = segments(field, name, ['projects', 'locations', 'registries']) as [
    string,
    string,
    string,
  ];
  const loc = parseLocation(`projects/${project}/locations/${location}`, field);
  checkResourceId(field, registry);
  return { ...loc, registry };
}

export function parseDevice(name: string, field = 'name'): DeviceName {
  const [project, location, registry, device] = segments(field, name, [
    'projects',
    'locations',
    'registries',
    'devices',
  ]) as [string, string, string, string];
  const reg = parseRegistry(`projects/${project}/locations/${location}/registries/${registry}`, field);
  if (!isResourceId(device) && !isNumId(device)) throw fieldError(field, `'${device}' is not a device id or numeric id`);
  return { ...reg, device };
}
