/**
 * Backend subscribers' identities: service accounts logging in with an API key. The broker sees
 * them through a narrow interface (the composition root adapts the service-account service) and
 * keeps, per connection, which account and key it holds and which registries it reaches.
 *
 * Backend topics name the registry id only (`registries/{registry}/…`), and registry ids are
 * unique only within a project and location, so a SUBSCRIBE is checked against the registry ids
 * the account reaches and then **every delivery** is checked against the message's own project,
 * location and registry: a key reaching registry `r` of project A never receives project B's `r`.
 */
import { reachesRegistry, type RegistryReach } from '../domain/roles.js';
import { BACKEND_ROOT } from './backend-topics.js';
import type { Connection } from './connection.js';
import { DeviceMessage, type Message } from './message.js';

/** The account behind a backend connection. */
export interface BackendPrincipal {
  readonly project: string;
  readonly id: string;
  readonly keyId: string;
}

export type BackendAuthentication =
  | {
      readonly ok: true;
      readonly principal: BackendPrincipal;
      readonly reach: RegistryReach;
      /** When the key stops being accepted: the connection ends then. */
      readonly expiresAt?: Date;
    }
  | { readonly ok: false; readonly reason: string };

/**
 * Checks a backend's MQTT credentials: the user name names the service account as
 * `{project}/{account id}`, the password is one of its API keys (`kwk_…`).
 */
export interface BackendAuthenticator {
  authenticate(username: string, password: string): Promise<BackendAuthentication>;
}

/** `{project}/{id}`: the name a backend logs in with and is audited under. */
export const backendAccountName = (p: { readonly project: string; readonly id: string }): string => `${p.project}/${p.id}`;

/** What a backend session may receive and subscribe to (client-session's `access`). */
export interface SessionAccess {
  /** Per delivery: the message's project, location and registry must be within reach. */
  receives(message: Message): boolean;
  /** Per SUBSCRIBE: whether the (plain) filter's registry level can match a registry within reach. */
  mayFilter(filter: string): boolean;
}

export function backendAccess(reach: RegistryReach): SessionAccess {
  // Registry ids reachable through registry-scoped bindings; project-scoped ones reach any id.
  const registryIds = new Set([...reach.registries].map((key) => key.slice(key.lastIndexOf('/') + 1)));
  const anyRegistry = reach.all || reach.projects.size > 0;
  return {
    receives(message) {
      // Only device messages enter the backend namespace; anything else is never delivered.
      if (!(message instanceof DeviceMessage)) return false;
      const a = message.attributes;
      return reachesRegistry(reach, a.projectId ?? '', a.deviceRegistryLocation ?? '', a.deviceRegistryId ?? '');
    },
    mayFilter(filter) {
      const levels = filter.split('/');
      if (levels[0] !== BACKEND_ROOT) return false;
      const registry = levels[1];
      if (registry === undefined || registry === '+' || registry === '#') return anyRegistry || registryIds.size > 0;
      return anyRegistry || registryIds.has(registry);
    },
  };
}

/**
 * Live backend connections by account, so that revoking a key, disabling or deleting the account
 * or changing its bindings ends them at once.
 */
export class BackendConnections {
  readonly #byConnection = new Map<Connection, BackendPrincipal>();

  add(conn: Connection, principal: BackendPrincipal): void {
    this.#byConnection.set(conn, principal);
  }

  remove(conn: Connection): void {
    this.#byConnection.delete(conn);
  }

  /** Connections of the account (only those logged in with `keyId` when one is given). */
  holding(project: string, id: string, keyId?: string): Connection[] {
    const found: Connection[] = [];
    for (const [conn, p] of this.#byConnection) {
      if (p.project === project && p.id === id && (keyId === undefined || p.keyId === keyId)) found.push(conn);
    }
    return found;
  }

  get size(): number {
    return this.#byConnection.size;
  }
}
