/** The PolicyStore on Kysely, for every dialect. */
import type { Kysely, Selectable, Transaction } from 'kysely';
import { registryColumns, registryExists } from './registry-scope.js';
import type { RegistryName } from '../domain/names.js';
import type { DialectTraits } from './dialect.js';
import type { PoliciesTable } from './policy-schema.js';
import {
  DEVICE_TYPE_METADATA_KEY,
  POLICY_TARGET_ORDER,
  type AttachPolicyResult,
  type DeletePolicyVersionResult,
  type DevicePolicies,
  type EffectivePolicy,
  type InsertPolicyResult,
  type InsertPolicyVersionResult,
  type PolicyStore,
  type PolicyTarget,
  type PolicyTargetKind,
  type SetDefaultPolicyVersionResult,
  type StoredPolicy,
  type StoredPolicyAttachment,
  type StoredPolicyVersion,
} from './policy-store.js';
import { decodeMetadata, numIdParam, toDate, toNumId } from './rows.js';
import type { Database } from './schema.js';
import type { ListQuery } from './store.js';

type Db = Kysely<Database> | Transaction<Database>;

const targetColumn = (t: PolicyTarget): string => (t.kind === 'registry' ? '' : t.kind === 'device-type' ? t.deviceType : t.numId);

function targetOf(kind: string, target: string): PolicyTarget {
  if (kind === 'registry') return { kind };
  if (kind === 'device-type') return { kind, deviceType: target };
  if (kind === 'device') return { kind, numId: target };
  throw new Error(`store: unexpected policy target kind '${kind}'`);
}

const rank = (kind: string): number => POLICY_TARGET_ORDER.indexOf(kind as PolicyTargetKind);

/** The key of a row of `policies`, and the columns that tie versions and attachments to it. */
const policyKey = (r: RegistryName, id: string) => ({ ...registryColumns(r), id });
const ofPolicy = (r: RegistryName, id: string) => ({ ...registryColumns(r), policy_id: id });

type PolicyRow = Selectable<PoliciesTable> & { document: string };

function toPolicy(row: PolicyRow): StoredPolicy {
  return {
    registry: { project: row.project, location: row.location, registry: row.registry_id },
    id: row.id,
    defaultVersion: Number(row.default_version),
    defaultDocument: row.document,
    createTime: toDate(row.created_at),
    updateTime: toDate(row.updated_at),
  };
}

export class KyselyPolicyStore implements PolicyStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly traits: DialectTraits,
  ) {}

  /** The policies of a registry with their default document. */
  #policies(db: Db, r: RegistryName) {
    return db
      .selectFrom('policies as p')
      .innerJoin('policy_versions as v', (j) =>
        j
          .onRef('v.project', '=', 'p.project')
          .onRef('v.location', '=', 'p.location')
          .onRef('v.registry_id', '=', 'p.registry_id')
          .onRef('v.policy_id', '=', 'p.id')
          .onRef('v.version', '=', 'p.default_version'),
      )
      .selectAll('p')
      .select('v.document')
      .where('p.project', '=', r.project)
      .where('p.location', '=', r.location)
      .where('p.registry_id', '=', r.registry);
  }

  async #get(db: Db, r: RegistryName, id: string): Promise<StoredPolicy | undefined> {
    const row = await this.#policies(db, r).where('p.id', '=', id).executeTakeFirst();
    return row && toPolicy(row);
  }

  async insertPolicy(r: RegistryName, id: string, document: string, at: Date): Promise<InsertPolicyResult> {
    try {
      return await this.db.transaction().execute(async (trx) => {
        if (!(await registryExists(trx, r))) return 'registry-not-found';
        const t = at.getTime();
        await trx
          .insertInto('policies')
          .values({ ...policyKey(r, id), default_version: 1, latest_version: 1, created_at: t, updated_at: t })
          .execute();
        await trx
          .insertInto('policy_versions')
          .values({ ...ofPolicy(r, id), version: 1, document, created_at: t })
          .execute();
        return 'created';
      });
    } catch (e) {
      if (this.traits.isUniqueViolation(e)) return 'exists';
      if (this.traits.isForeignKeyViolation(e)) return 'registry-not-found';
      throw e;
    }
  }

  getPolicy(r: RegistryName, id: string): Promise<StoredPolicy | undefined> {
    return this.#get(this.db, r, id);
  }

  async listPolicies(r: RegistryName, query: ListQuery): Promise<StoredPolicy[]> {
    let q = this.#policies(this.db, r);
    if (query.afterId !== undefined) q = q.where('p.id', '>', query.afterId);
    const rows = await q.orderBy('p.id').limit(query.limit).execute();
    return rows.map(toPolicy);
  }

  deletePolicy(r: RegistryName, id: string): Promise<'deleted' | 'not-found' | 'attached'> {
    return this.db.transaction().execute(async (trx) => {
      const attached = await this.#attachments(trx, r, id).select('a.target_kind').limit(1).executeTakeFirst();
      if (attached) return 'attached';
      const result = await trx
        .deleteFrom('policies')
        .where((eb) => eb.and(policyKey(r, id)))
        .executeTakeFirst();
      return Number(result.numDeletedRows) > 0 ? 'deleted' : 'not-found';
    });
  }

  #versions(db: Db, r: RegistryName, id: string) {
    return db.selectFrom('policy_versions').where((eb) => eb.and(ofPolicy(r, id)));
  }

  #updatePolicy(db: Db, r: RegistryName, id: string) {
    return db.updateTable('policies').where((eb) => eb.and(policyKey(r, id)));
  }

  insertPolicyVersion(
    r: RegistryName,
    id: string,
    document: string,
    options: { readonly at: Date; readonly setAsDefault: boolean; readonly maxVersions: number },
  ): Promise<InsertPolicyVersionResult> {
    return this.db.transaction().execute(async (trx): Promise<InsertPolicyVersionResult> => {
      const policy = await trx
        .selectFrom('policies')
        .select(['default_version', 'latest_version'])
        .where((eb) => eb.and(policyKey(r, id)))
        .executeTakeFirst();
      if (!policy) return { status: 'not-found' };
      const count = await this.#versions(trx, r, id).select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow();
      if (Number(count.n) >= options.maxVersions) return { status: 'limit', max: options.maxVersions };
      const version = Number(policy.latest_version) + 1;
      const t = options.at.getTime();
      await trx
        .insertInto('policy_versions')
        .values({ ...ofPolicy(r, id), version, document, created_at: t })
        .execute();
      await this.#updatePolicy(trx, r, id)
        .set({ latest_version: version, updated_at: t, ...(options.setAsDefault ? { default_version: version } : {}) })
        .execute();
      const after = await this.#get(trx, r, id);
      if (!after) throw new Error('store: policy vanished inside its transaction');
      return { status: 'created', version: { version, document, createTime: options.at }, policy: after, previousDefault: Number(policy.default_version) };
    });
  }

  async listPolicyVersions(r: RegistryName, id: string): Promise<StoredPolicyVersion[] | undefined> {
    return this.db.transaction().execute(async (trx) => {
      const rows = await this.#versions(trx, r, id).select(['version', 'document', 'created_at']).orderBy('version').execute();
      if (rows.length === 0) return undefined; // every policy keeps its default version
      return rows.map((v) => ({ version: Number(v.version), document: v.document, createTime: toDate(v.created_at) }));
    });
  }

  setDefaultPolicyVersion(r: RegistryName, id: string, version: number, at: Date): Promise<SetDefaultPolicyVersionResult> {
    return this.db.transaction().execute(async (trx): Promise<SetDefaultPolicyVersionResult> => {
      const before = await this.#get(trx, r, id);
      if (!before) return { status: 'not-found' };
      const exists = await this.#versions(trx, r, id).select('version').where('version', '=', version).executeTakeFirst();
      if (!exists) return { status: 'version-not-found' };
      await this.#updatePolicy(trx, r, id).set({ default_version: version, updated_at: at.getTime() }).execute();
      const after = await this.#get(trx, r, id);
      if (!after) throw new Error('store: policy vanished inside its transaction');
      return { status: 'updated', previousDefault: before.defaultVersion, policy: after };
    });
  }

  deletePolicyVersion(r: RegistryName, id: string, version: number): Promise<DeletePolicyVersionResult> {
    return this.db.transaction().execute(async (trx): Promise<DeletePolicyVersionResult> => {
      const policy = await this.#get(trx, r, id);
      if (!policy) return 'not-found';
      if (policy.defaultVersion === version) return 'is-default';
      const result = await trx
        .deleteFrom('policy_versions')
        .where((eb) => eb.and({ ...ofPolicy(r, id), version }))
        .executeTakeFirst();
      return Number(result.numDeletedRows) > 0 ? 'deleted' : 'version-not-found';
    });
  }

  async attachPolicy(r: RegistryName, id: string, target: PolicyTarget, at: Date): Promise<AttachPolicyResult> {
    try {
      return await this.db.transaction().execute(async (trx): Promise<AttachPolicyResult> => {
        if (!(await this.#get(trx, r, id))) return 'not-found';
        let deviceNumId: number | null = null;
        if (target.kind === 'device') {
          const n = numIdParam(target.numId);
          const device =
            n === undefined
              ? undefined
              : await trx
                  .selectFrom('devices')
                  .select('num_id')
                  .where('num_id', '=', n)
                  .where((eb) => eb.and(registryColumns(r)))
                  .executeTakeFirst();
          if (!device || n === undefined) return 'device-not-found';
          deviceNumId = n;
        }
        await trx
          .insertInto('policy_attachments')
          .values({
            ...ofPolicy(r, id),
            target_kind: target.kind,
            target: targetColumn(target),
            device_num_id: deviceNumId,
            created_at: at.getTime(),
          })
          .execute();
        return 'attached';
      });
    } catch (e) {
      if (this.traits.isUniqueViolation(e)) return 'exists';
      // The device (or policy) went away between the check and the insert.
      if (this.traits.isForeignKeyViolation(e)) return target.kind === 'device' ? 'device-not-found' : 'not-found';
      throw e;
    }
  }

  async detachPolicy(r: RegistryName, id: string, target: PolicyTarget): Promise<'detached' | 'not-found'> {
    const result = await this.db
      .deleteFrom('policy_attachments')
      .where((eb) => eb.and({ ...ofPolicy(r, id), target_kind: target.kind, target: targetColumn(target) }))
      .executeTakeFirst();
    return Number(result.numDeletedRows) > 0 ? 'detached' : 'not-found';
  }

  #attachments(db: Db, r: RegistryName, id: string) {
    return db
      .selectFrom('policy_attachments as a')
      .where('a.project', '=', r.project)
      .where('a.location', '=', r.location)
      .where('a.registry_id', '=', r.registry)
      .where('a.policy_id', '=', id);
  }

  async listPolicyAttachments(r: RegistryName, id: string): Promise<StoredPolicyAttachment[]> {
    const rows = await this.#attachments(this.db, r, id)
      .leftJoin('devices as d', 'd.num_id', 'a.device_num_id')
      .select(['a.policy_id', 'a.target_kind', 'a.target', 'a.created_at', 'd.id as device_id'])
      .execute();
    return rows
      .map((row) => ({
        policyId: row.policy_id,
        target: targetOf(row.target_kind, row.target),
        ...(row.device_id !== null && row.device_id !== undefined ? { deviceId: row.device_id } : {}),
        createTime: toDate(row.created_at),
      }))
      .sort((a, b) => rank(a.target.kind) - rank(b.target.kind) || targetColumn(a.target).localeCompare(targetColumn(b.target)));
  }

  async hasPolicyAttachments(r: RegistryName): Promise<boolean> {
    const row = await this.db
      .selectFrom('policy_attachments')
      .select('policy_id')
      .where((eb) => eb.and(registryColumns(r)))
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
  }

  async devicePolicies(numId: string): Promise<DevicePolicies | undefined> {
    const n = numIdParam(numId);
    if (n === undefined) return undefined;
    const device = await this.db
      .selectFrom('devices')
      .select(['project', 'location', 'registry_id', 'id', 'num_id', 'metadata'])
      .where('num_id', '=', n)
      .executeTakeFirst();
    if (!device) return undefined;
    const metadata = decodeMetadata(device.metadata);
    const deviceType = Object.prototype.hasOwnProperty.call(metadata, DEVICE_TYPE_METADATA_KEY) ? metadata[DEVICE_TYPE_METADATA_KEY] : undefined;
    const rows = await this.db
      .selectFrom('policy_attachments as a')
      .innerJoin('policies as p', (j) =>
        j
          .onRef('p.project', '=', 'a.project')
          .onRef('p.location', '=', 'a.location')
          .onRef('p.registry_id', '=', 'a.registry_id')
          .onRef('p.id', '=', 'a.policy_id'),
      )
      .innerJoin('policy_versions as v', (j) =>
        j
          .onRef('v.project', '=', 'p.project')
          .onRef('v.location', '=', 'p.location')
          .onRef('v.registry_id', '=', 'p.registry_id')
          .onRef('v.policy_id', '=', 'p.id')
          .onRef('v.version', '=', 'p.default_version'),
      )
      .select(['a.policy_id', 'a.target_kind', 'v.version', 'v.document'])
      .where('a.project', '=', device.project)
      .where('a.location', '=', device.location)
      .where('a.registry_id', '=', device.registry_id)
      .where((eb) =>
        eb.or([
          eb('a.target_kind', '=', 'registry'),
          eb.and([eb('a.target_kind', '=', 'device'), eb('a.target', '=', toNumId(device.num_id))]),
          ...(deviceType !== undefined && deviceType !== '' ? [eb.and([eb('a.target_kind', '=', 'device-type'), eb('a.target', '=', deviceType)])] : []),
        ]),
      )
      .execute();
    const policies: EffectivePolicy[] = rows
      .map((row) => ({ policyId: row.policy_id, version: Number(row.version), document: row.document, via: row.target_kind as PolicyTargetKind }))
      .sort((a, b) => rank(a.via) - rank(b.via) || (a.policyId < b.policyId ? -1 : a.policyId > b.policyId ? 1 : 0));
    return {
      device: { project: device.project, location: device.location, registry: device.registry_id, device: device.id },
      numId: toNumId(device.num_id),
      metadata,
      policies,
    };
  }
}
