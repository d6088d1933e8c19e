/**
 * The table of gateway bindings (migration 0009_gateway_bindings), typed as in schema.ts: a
 * device bound to a gateway of its registry, with the time it was bound.
 */
import type { Int64 } from './schema.js';

export interface GatewayBindingsTable {
  gateway_num_id: Int64;
  device_num_id: Int64;
  project: string;
  location: string;
  registry_id: string;
  bound_at: Int64;
}
