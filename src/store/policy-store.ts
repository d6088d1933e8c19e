/**
 * Device policies in the store: policies of a registry, their immutable versions, and their
 * attachments. The store keeps documents as JSON text and knows nothing of their language; the
 * policy service parses, lints and evaluates them. Outcomes are values, as in store.ts.
 */
import type { DeviceName, RegistryName } from '../domain/names.js';
import type { ListQuery } from './store.js';

/** Where a policy applies: every device of the registry, devices whose `type` label is a value, one device. */
export type PolicyTarget =
  | { readonly kind: 'registry' }
  | { readonly kind: 'device-type'; readonly deviceType: string }
  | { readonly kind: 'device'; readonly numId: string };

export type PolicyTargetKind = PolicyTarget['kind'];

/** The order effective policies come in: registry first, then device type, then the device's own. */
export const POLICY_TARGET_ORDER: readonly PolicyTargetKind[] = ['registry', 'device-type', 'device'];

/** The metadata key whose value is a device's type. */
export const DEVICE_TYPE_METADATA_KEY = 'type';

export interface StoredPolicy {
  readonly registry: RegistryName;
  readonly id: string;
  readonly defaultVersion: number;
  /** JSON text of the default version's document. */
  readonly defaultDocument: string;
  readonly createTime: Date;
  readonly updateTime: Date;
}

export interface StoredPolicyVersion {
  readonly version: number;
  /** JSON text. */
  readonly document: string;
  readonly createTime: Date;
}

/** An attachment as listed; a device target also names the device by id. */
export interface StoredPolicyAttachment {
  readonly policyId: string;
  readonly target: PolicyTarget;
  /** For a device target. */
  readonly deviceId?: string;
  readonly createTime: Date;
}

/** One document that applies to a device, with how it reaches it. */
export interface EffectivePolicy {
  readonly policyId: string;
  readonly version: number;
  readonly document: string;
  readonly via: PolicyTargetKind;
}

/** What compiling a device's policy needs: the device's identity and metadata, and its documents in order. */
export interface DevicePolicies {
  readonly device: DeviceName;
  readonly numId: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** Registry → device type → device; by policy id within each. */
  readonly policies: readonly EffectivePolicy[];
}

export type InsertPolicyResult = 'created' | 'exists' | 'registry-not-found';

export type InsertPolicyVersionResult =
  | { readonly status: 'created'; readonly version: StoredPolicyVersion; readonly policy: StoredPolicy; readonly previousDefault: number }
  | { readonly status: 'not-found' }
  /** `max` versions are kept already: one must be deleted first (nothing was written). */
  | { readonly status: 'limit'; readonly max: number };

export type SetDefaultPolicyVersionResult =
  | { readonly status: 'updated'; readonly previousDefault: number; readonly policy: StoredPolicy }
  | { readonly status: 'not-found' }
  | { readonly status: 'version-not-found' };

export type DeletePolicyVersionResult = 'deleted' | 'not-found' | 'version-not-found' | 'is-default';

export type AttachPolicyResult = 'attached' | 'exists' | 'not-found' | 'device-not-found';

export interface PolicyStore {
  /** The policy with `document` as version 1, its default. */
  insertPolicy(registry: RegistryName, id: string, document: string, at: Date): Promise<InsertPolicyResult>;
  getPolicy(registry: RegistryName, id: string): Promise<StoredPolicy | undefined>;
  /** Ordered by id. */
  listPolicies(registry: RegistryName, query: ListQuery): Promise<StoredPolicy[]>;
  /** Refused with 'attached' while any attachment remains, in the same transaction. Versions go with it. */
  deletePolicy(registry: RegistryName, id: string): Promise<'deleted' | 'not-found' | 'attached'>;

  /** Adds the next version, refused ('limit') when `maxVersions` are kept already. */
  insertPolicyVersion(
    registry: RegistryName,
    id: string,
    document: string,
    options: { readonly at: Date; readonly setAsDefault: boolean; readonly maxVersions: number },
  ): Promise<InsertPolicyVersionResult>;
  /** Oldest first; undefined when there is no such policy. */
  listPolicyVersions(registry: RegistryName, id: string): Promise<StoredPolicyVersion[] | undefined>;
  setDefaultPolicyVersion(registry: RegistryName, id: string, version: number, at: Date): Promise<SetDefaultPolicyVersionResult>;
  /** The default version is never deleted ('is-default'). */
  deletePolicyVersion(registry: RegistryName, id: string, version: number): Promise<DeletePolicyVersionResult>;

  attachPolicy(registry: RegistryName, id: string, target: PolicyTarget, at: Date): Promise<AttachPolicyResult>;
  /** 'not-found' when there was no such attachment. */
  detachPolicy(registry: RegistryName, id: string, target: PolicyTarget): Promise<'detached' | 'not-found'>;
  /** In target order (registry, device type, device), then by target. */
  listPolicyAttachments(registry: RegistryName, id: string): Promise<StoredPolicyAttachment[]>;

  /** Whether any policy is attached to anything in the registry (the broker skips the rest when not). */
  hasPolicyAttachments(registry: RegistryName): Promise<boolean>;

  /**
   * The default-version documents that apply to the device, in order registry → device type →
   * device: two indexed queries, for every CONNECT. Undefined when there is no such device.
   */
  devicePolicies(numId: string): Promise<DevicePolicies | undefined>;
}
