/**
 * Device policy tables (migration 0006_policies), typed as in schema.ts: times are epoch
 * milliseconds in bigint columns, documents JSON text as the policy module parsed them.
 */
import type { Int64, NullableInt64 } from './schema.js';

export interface PoliciesTable {
  project: string;
  location: string;
  registry_id: string;
  id: string;
  default_version: number;
  /** The highest version number ever given: numbers are never reused, so audit entries stay unambiguous. */
  latest_version: number;
  created_at: Int64;
  updated_at: Int64;
}

export interface PolicyVersionsTable {
  project: string;
  location: string;
  registry_id: string;
  policy_id: string;
  version: number;
  /** Compact JSON text of the document. */
  document: string;
  created_at: Int64;
}

export interface PolicyAttachmentsTable {
  project: string;
  location: string;
  registry_id: string;
  policy_id: string;
  /** 'registry' | 'device-type' | 'device'. */
  target_kind: string;
  /** '' for the registry, the `type` label for a device type, the numeric id (decimal) for a device. */
  target: string;
  /** Set for a device target only: the cascade that removes the attachment with the device. */
  device_num_id: NullableInt64;
  created_at: Int64;
}
