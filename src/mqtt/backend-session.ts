/** What the broker holds for a backend subscriber connection (authenticated by the admin token). */
import type { GrantedQoS } from './device-session.js';

export class BackendSession {
  /** Its filters and their granted QoS, to remove them from the trie when it leaves. */
  readonly filters = new Map<string, GrantedQoS>();

  /** Empty when the client let the server choose (nothing to take over then). */
  constructor(readonly clientId: string) {}
}
