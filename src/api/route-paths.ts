/**
 * The admin API's resource paths, as route templates, and the names their path parameters spell.
 * Shared by the route tables (routes.ts and the files of Keyway's own resources beside it).
 */
import {
  parseDevice,
  parseLocation,
  parseRegistry,
  type DeviceName,
  type LocationName,
  type RegistryName,
} from '../domain/names.js';

/** Path parameters, as Fastify gives them. */
type PathParams = Readonly<Record<string, string>>;

export const LOCATION = '/v1/projects/{project}/locations/{location}';
export const REGISTRY = `${LOCATION}/registries/{registry}`;
export const DEVICE = `${REGISTRY}/devices/{device}`;

/** `field` names the request field a malformed name is reported under. */
export const locationOf = (p: PathParams, field = 'parent'): LocationName =>
  parseLocation(`projects/${p.project}/locations/${p.location}`, field);
export const registryOf = (p: PathParams, field = 'name'): RegistryName =>
  parseRegistry(`projects/${p.project}/locations/${p.location}/registries/${p.registry}`, field);
export const deviceOf = (p: PathParams, field = 'name'): DeviceName =>
  parseDevice(`projects/${p.project}/locations/${p.location}/registries/${p.registry}/devices/${p.device}`, field);
