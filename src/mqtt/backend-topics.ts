/**
 * The backend-facing namespace: a backend subscriber (a service account logged in with an API key) sees
 * device traffic as `registries/{registry}/devices/{device}/events[/{subfolder…}]` and
 * `registries/{registry}/devices/{device}/state`, and may subscribe to nothing else.
 *
 * Registry ids are unique only within a project and location, so two tenants' registries of the
 * same id share these topics: backend-identity checks every delivery against the message's own
 * project, location and registry.
 */
import { isResourceId } from '../domain/names.js';
import { isValidFilter } from './topic-trie.js';

export const BACKEND_ROOT = 'registries';

export const backendDevicePrefix = (registryId: string, deviceId: string): string =>
  `${BACKEND_ROOT}/${registryId}/devices/${deviceId}`;

/** `registries/{registry}/devices/{device}/events`; a subfolder suffix `/{…}` may follow. */
export const backendEventsTopic = (registryId: string, deviceId: string): string =>
  `${backendDevicePrefix(registryId, deviceId)}/events`;

export const backendStateTopic = (registryId: string, deviceId: string): string =>
  `${backendDevicePrefix(registryId, deviceId)}/state`;

const isWildcard = (level: string): boolean => level === '+' || level === '#';

/**
 * Why a backend may not subscribe to `filter`, or undefined when it may. The filter must be a
 * valid MQTT filter whose first level is literally `registries` and whose every literal level fits
 * the namespace, so that it can only ever match device events and state.
 */
export function backendFilterProblem(filter: string): string | undefined {
  if (!isValidFilter(filter)) return 'not a valid topic filter';
  const levels = filter.split('/');
  if (levels[0] !== BACKEND_ROOT) return `the first level must be '${BACKEND_ROOT}'`;
  const last = levels[levels.length - 1] as string;
  if (levels.length < 5 && last !== '#') return 'the filter must reach the events or state level or end with #';

  for (let i = 1; i < levels.length; i++) {
    const level = levels[i] as string;
    if (isWildcard(level)) continue;
    switch (i) {
      case 1:
        if (!isResourceId(level)) return `'${level}' is not a registry id`;
        break;
      case 2:
        if (level !== 'devices') return "the third level must be 'devices'";
        break;
      case 3:
        if (!isResourceId(level)) return `'${level}' is not a device id`;
        break;
      case 4:
        if (level !== 'events' && level !== 'state') return "the fifth level must be 'events' or 'state'";
        break;
      default:
        if (levels[4] === 'state') return 'state has no subfolders';
        if (level.includes('+')) return "a subfolder level may not contain '+'";
    }
  }
  return undefined;
}
