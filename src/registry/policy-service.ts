/**
 * Device policies as resources operators manage: documents in versions (at most 5 kept, one the
 * default), attachments to a registry, a device type (the device's `type` metadata value) or a
 * device, lint on every write, and a dry run of what a device's connection would be allowed.
 *
 * Live effect: every change that alters what a device may do is announced on the bus
 * (PoliciesChanged) after it is committed, so that connections recompile (see `announce…`).
 * The broker compiles a connection's policy with `compileForDevice`.
 */
import { pino, type Logger } from 'pino';
import type { Bus } from '../bus/bus.js';
import { alreadyExists, failedPrecondition, fieldError, KeywayError, notFound, type FieldViolation } from '../domain/errors.js';
import { checkResourceId, formatDevice, formatRegistry, registryOf, type DeviceName, type RegistryName } from '../domain/names.js';
import type { Page, PageRequest } from '../domain/resources.js';
import { certificateFields, parseCertificatePem } from '../identity/x509-certificate.js';
import {
  certSubjectFromFields,
  CLOUD_IOT_CORE_POLICY,
  compilePolicies,
  compilePolicyTemplate,
  hasLintErrors,
  lintPolicyDocument,
  parsePolicyDocument,
  POLICY_ACTIONS,
  type CertSubjectField,
  type CompiledPolicy,
  type NamedPolicyDocument,
  type PolicyAction,
  type PolicyContext,
  type PolicyDecision,
  type PolicyDocument,
  type PolicyLintFinding,
  type PolicyTemplate,
  type UnresolvedResource,
} from '../policy/index.js';
import type { DevicePolicies, PolicyTarget, PolicyTargetKind, StoredPolicy, StoredPolicyAttachment } from '../store/policy-store.js';
import type { Store } from '../store/store.js';
import { deviceRefOf } from './device-refs.js';
import { decodePageToken, pageSizeOf, toPage } from './paging.js';

/** As AWS IoT: at most five versions of a policy are kept; a sixth is refused until one is deleted. */
export const MAX_POLICY_VERSIONS = 5;
/** Parsed documents kept by their JSON text (versions are immutable, so text identifies a document). */
const PARSED_CACHE_SIZE = 1000;
/** Registries whose attachment fact is kept (cleared whole when full: it is only a shortcut). */
const ATTACHED_CACHE_SIZE = 10_000;
// eslint-disable-next-line no-control-regex -- control characters are what a label must not hold
const CONTROL = /[\u0000-\u001f\u007f]/;
const DEVICE_TYPE_MAX_CHARS = 128;

/** How a request names a target. */
export type PolicyTargetInput = { readonly registry: true } | { readonly deviceId: string } | { readonly deviceType: string };

/** A target as reported: a device with both its ids. */
export type PolicyTargetView =
  | { readonly registry: true }
  | { readonly deviceId: string; readonly deviceNumId: string }
  | { readonly deviceType: string };

export interface Policy {
  readonly registry: RegistryName;
  readonly id: string;
  readonly defaultVersion: number;
  /** The default version's document. */
  readonly document: PolicyDocument;
  readonly createTime: Date;
  readonly updateTime: Date;
}

export interface PolicyVersion {
  readonly version: number;
  readonly document: PolicyDocument;
  readonly isDefault: boolean;
  readonly createTime: Date;
}

export interface PolicyAttachment {
  readonly policyId: string;
  readonly target: PolicyTargetView;
  readonly createTime: Date;
}

/** A document that applies to a device, in evaluation order. */
export interface EffectivePolicy {
  /** The policy id, or `keyway:cloud-iot-core` for the built-in grants. */
  readonly policy: string;
  readonly version: number;
  readonly via: 'builtin' | PolicyTargetKind;
  readonly document: PolicyDocument;
}

export interface WriteOptions {
  /** Store a document that lint flags with errors anyway. */
  readonly force?: boolean;
}

export type DryRunDecision = PolicyDecision & {
  /** Resources that match nothing for this device, and why (a missing metadata key…). */
  readonly unresolved: readonly UnresolvedResource[];
};

export type CertSubject = Readonly<Partial<Record<CertSubjectField, string>>>;

/** A connection's policy (compileForDevice). */
export interface ConnectionPolicy {
  readonly device: DeviceName;
  readonly compiled: CompiledPolicy;
}

/** A compiled connection policy with the facts it was compiled from. */
export interface DevicePolicy {
  readonly device: DeviceName;
  readonly context: PolicyContext;
  readonly policies: readonly EffectivePolicy[];
  readonly compiled: CompiledPolicy;
}

export interface PolicyServiceOptions {
  readonly store: Store;
  readonly bus: Bus;
  readonly now?: () => Date;
  readonly logger?: Logger;
}


function lintViolations(findings: readonly PolicyLintFinding[], field: string): FieldViolation[] {
  return findings
    .filter((f) => f.severity === 'error')
    .map((f) => ({ field: `${field}.statements[${f.statement}].resources`, description: `${f.code}: ${f.message}` }));
}

export class PolicyService {
  readonly #store: Store;
  readonly #bus: Bus;
  readonly #now: () => Date;
  readonly #logger: Logger;
  readonly #parsed = new Map<string, PolicyDocument>();
  /** Compiled document sets by their documents' text ('' = the built-in grants alone). */
  readonly #templates = new Map<string, PolicyTemplate>();
  /** Registry path → whether anything in it has a policy attached (see compileForDevice). */
  readonly #attached = new Map<string, boolean>();
  /** Bumped by every PoliciesChanged: an answer read across one is not kept. */
  #generation = 0;

  constructor(o: PolicyServiceOptions) {
    this.#store = o.store;
    this.#bus = o.bus;
    this.#now = o.now ?? (() => new Date());
    this.#logger = o.logger ?? pino({ level: 'silent' });
    // Changes announced by anyone on the bus (this service also forgets before it publishes).
    o.bus.onPoliciesChanged((e) => this.#forget(e.registry));
  }

  // ---- documents -----------------------------------------------------------------------------

  /** Findings for a document; a document that does not parse is refused with the field at fault. */
  lint(document: unknown, field = 'document'): PolicyLintFinding[] {
    return lintPolicyDocument(parsePolicyDocument(document, field));
  }

  /** Parses and lints a document to be stored; lint errors refuse it unless forced. */
  #checkForWrite(document: unknown, options: WriteOptions, field = 'document'): { text: string; findings: PolicyLintFinding[] } {
    const parsed = parsePolicyDocument(document, field);
    const findings = lintPolicyDocument(parsed);
    if (hasLintErrors(findings) && options.force !== true) {
      const violations = lintViolations(findings, field);
      throw new KeywayError(
        'INVALID_ARGUMENT',
        `The policy document is over-permissive (${violations.length} lint error${violations.length === 1 ? '' : 's'}); narrow it, or pass force: true to store it anyway.`,
        violations,
      );
    }
    return { text: JSON.stringify(parsed), findings };
  }

  #document(text: string): PolicyDocument {
    let doc = this.#parsed.get(text);
    if (doc) return doc;
    doc = parsePolicyDocument(text, 'storedDocument');
    if (this.#parsed.size >= PARSED_CACHE_SIZE) this.#parsed.delete(this.#parsed.keys().next().value as string);
    this.#parsed.set(text, doc);
    return doc;
  }

  #policy(p: StoredPolicy): Policy {
    return {
      registry: p.registry,
      id: p.id,
      defaultVersion: p.defaultVersion,
      document: this.#document(p.defaultDocument),
      createTime: p.createTime,
      updateTime: p.updateTime,
    };
  }

  async #registry(registry: RegistryName): Promise<RegistryName> {
    const r = registryOf(registry);
    if (!(await this.#store.getRegistry(r))) throw notFound(`Registry ${formatRegistry(r)} not found.`);
    return r;
  }

  #notFound(registry: RegistryName, id: string): KeywayError {
    return notFound(`Policy ${formatRegistry(registry)}/policies/${id} not found.`);
  }

  // ---- policies ------------------------------------------------------------------------------

  async createPolicy(
    registry: RegistryName,
    id: string,
    document: unknown,
    options: WriteOptions = {},
  ): Promise<{ readonly policy: Policy; readonly lintFindings: readonly PolicyLintFinding[] }> {
    checkResourceId('policyId', id);
    const { text, findings } = this.#checkForWrite(document, options);
    const r = registryOf(registry);
    const result = await this.#store.policies.insertPolicy(r, id, text, this.#now());
    if (result === 'registry-not-found') throw notFound(`Registry ${formatRegistry(r)} not found.`);
    if (result === 'exists') throw alreadyExists(`Policy ${formatRegistry(r)}/policies/${id} already exists.`);
    // A new policy is attached to nothing: no device is affected yet.
    return { policy: await this.getPolicy(r, id), lintFindings: findings };
  }

  async getPolicy(registry: RegistryName, id: string): Promise<Policy> {
    const r = registryOf(registry);
    const p = await this.#store.policies.getPolicy(r, id);
    if (!p) {
      await this.#registry(r);
      throw this.#notFound(r, id);
    }
    return this.#policy(p);
  }

  async listPolicies(registry: RegistryName, page: PageRequest = {}): Promise<Page<Policy>> {
    const r = await this.#registry(registry);
    const size = pageSizeOf(page);
    const afterId = decodePageToken(page.pageToken);
    const rows = await this.#store.policies.listPolicies(r, { limit: size + 1, ...(afterId !== undefined ? { afterId } : {}) });
    return toPage(rows.map((p) => this.#policy(p)), size, (p) => p.id);
  }

  /** Refused while the policy is attached anywhere (as AWS DeletePolicy); nothing a device may do changes. */
  async deletePolicy(registry: RegistryName, id: string): Promise<void> {
    const r = registryOf(registry);
    const result = await this.#store.policies.deletePolicy(r, id);
    if (result === 'not-found') {
      await this.#registry(r);
      throw this.#notFound(r, id);
    }
    if (result === 'attached') throw failedPrecondition(`Policy ${id} is attached; detach it from every target before deleting it.`);
  }

  // ---- versions ------------------------------------------------------------------------------

  async createPolicyVersion(
    registry: RegistryName,
    id: string,
    document: unknown,
    options: WriteOptions & { readonly setAsDefault?: boolean } = {},
  ): Promise<{ readonly version: PolicyVersion; readonly lintFindings: readonly PolicyLintFinding[] }> {
    const { text, findings } = this.#checkForWrite(document, options);
    const r = registryOf(registry);
    const setAsDefault = options.setAsDefault === true;
    const result = await this.#store.policies.insertPolicyVersion(r, id, text, { at: this.#now(), setAsDefault, maxVersions: MAX_POLICY_VERSIONS });
    if (result.status === 'not-found') {
      await this.#registry(r);
      throw this.#notFound(r, id);
    }
    if (result.status === 'limit')
      throw failedPrecondition(
        `Policy ${id} already has ${result.max} versions, the most that are kept; delete a version that is not the default first.`,
      );
    if (setAsDefault) await this.#announcePolicy(r, id);
    return {
      version: { version: result.version.version, document: this.#document(text), isDefault: setAsDefault, createTime: result.version.createTime },
      lintFindings: findings,
    };
  }

  async listPolicyVersions(registry: RegistryName, id: string): Promise<PolicyVersion[]> {
    const r = registryOf(registry);
    const policy = await this.getPolicy(r, id);
    const versions = (await this.#store.policies.listPolicyVersions(r, id)) ?? [];
    return versions.map((v) => ({
      version: v.version,
      document: this.#document(v.document),
      isDefault: v.version === policy.defaultVersion,
      createTime: v.createTime,
    }));
  }

  async setDefaultPolicyVersion(registry: RegistryName, id: string, version: number): Promise<Policy> {
    checkVersion(version);
    const r = registryOf(registry);
    const result = await this.#store.policies.setDefaultPolicyVersion(r, id, version, this.#now());
    if (result.status === 'not-found') {
      await this.#registry(r);
      throw this.#notFound(r, id);
    }
    if (result.status === 'version-not-found') throw notFound(`Policy ${id} has no version ${version}.`);
    if (result.previousDefault !== version) await this.#announcePolicy(r, id);
    return this.#policy(result.policy);
  }

  /** Only a version that is not the default: no device is affected. */
  async deletePolicyVersion(registry: RegistryName, id: string, version: number): Promise<void> {
    checkVersion(version);
    const r = registryOf(registry);
    const result = await this.#store.policies.deletePolicyVersion(r, id, version);
    if (result === 'not-found') {
      await this.#registry(r);
      throw this.#notFound(r, id);
    }
    if (result === 'version-not-found') throw notFound(`Policy ${id} has no version ${version}.`);
    if (result === 'is-default')
      throw failedPrecondition(`Version ${version} is the default version of policy ${id}; make another version the default first.`);
  }

  // ---- attachments ---------------------------------------------------------------------------

  async #target(r: RegistryName, input: PolicyTargetInput): Promise<{ target: PolicyTarget; device?: DeviceName }> {
    const given = ['registry', 'deviceId', 'deviceType'].filter((k) => (input as Record<string, unknown>)[k] !== undefined);
    if (given.length !== 1) throw fieldError('target', 'must name exactly one of registry (true), deviceId or deviceType');
    if ('registry' in input) {
      if (input.registry !== true) throw fieldError('target.registry', 'must be true');
      return { target: { kind: 'registry' } };
    }
    if ('deviceType' in input) return { target: { kind: 'device-type', deviceType: checkDeviceType(input.deviceType) } };
    const device = input.deviceId;
    if (typeof device !== 'string' || device === '') throw fieldError('target.deviceId', 'must be a device id or numeric id');
    const found = await this.#store.findDeviceCredentials(r, deviceRefOf(device));
    if (!found) throw notFound(`Device ${formatRegistry(r)}/devices/${device} not found.`);
    return { target: { kind: 'device', numId: found.numId }, device: found.name };
  }

  async attachPolicy(registry: RegistryName, id: string, input: PolicyTargetInput): Promise<PolicyAttachment> {
    const r = await this.#registry(registry);
    const { target, device } = await this.#target(r, input);
    const result = await this.#store.policies.attachPolicy(r, id, target, this.#now());
    if (result === 'not-found') throw this.#notFound(r, id);
    if (result === 'device-not-found') throw notFound(`Device ${formatRegistry(r)}/devices/${'deviceId' in input ? input.deviceId : ''} not found.`);
    if (result === 'exists') throw alreadyExists(`Policy ${id} is already attached to ${describeTarget(target, device)}.`);
    this.#announceTarget(r, target, device);
    const attachment = (await this.#store.policies.listPolicyAttachments(r, id)).find((a) => sameTarget(a.target, target));
    return attachment ? toAttachment(attachment) : { policyId: id, target: viewOf(target, device), createTime: this.#now() };
  }

  async detachPolicy(registry: RegistryName, id: string, input: PolicyTargetInput): Promise<void> {
    const r = await this.#registry(registry);
    const { target, device } = await this.#target(r, input);
    const result = await this.#store.policies.detachPolicy(r, id, target);
    if (result === 'not-found') {
      await this.getPolicy(r, id);
      throw notFound(`Policy ${id} is not attached to ${describeTarget(target, device)}.`);
    }
    this.#announceTarget(r, target, device);
  }

  async listPolicyAttachments(registry: RegistryName, id: string): Promise<PolicyAttachment[]> {
    const r = registryOf(registry);
    await this.getPolicy(r, id);
    return (await this.#store.policies.listPolicyAttachments(r, id)).map(toAttachment);
  }

  // ---- what a device gets --------------------------------------------------------------------

  async #devicePolicies(device: DeviceName): Promise<DevicePolicies> {
    const r = registryOf(device);
    const found = await this.#store.findDeviceCredentials(r, deviceRefOf(device.device));
    const policies = found && (await this.#store.policies.devicePolicies(found.numId));
    if (!policies) {
      await this.#registry(r);
      throw notFound(`Device ${formatDevice(device)} not found.`);
    }
    return policies;
  }

  #effective(p: Pick<DevicePolicies, 'policies'>): EffectivePolicy[] {
    return [
      { policy: CLOUD_IOT_CORE_POLICY.name, version: CLOUD_IOT_CORE_POLICY.version, via: 'builtin', document: CLOUD_IOT_CORE_POLICY.document },
      ...p.policies.map((e) => ({ policy: e.policyId, version: e.version, via: e.via, document: this.#document(e.document) })),
    ];
  }

  #compile(p: DevicePolicies, certSubject?: PolicyContext['certSubject']): DevicePolicy {
    const policies = this.#effective(p);
    const context: PolicyContext = {
      registryId: p.device.registry,
      deviceId: p.device.device,
      deviceNumId: p.numId,
      metadata: p.metadata,
      ...(certSubject ? { certSubject } : {}),
    };
    const named: NamedPolicyDocument[] = policies.map((e) => ({ name: e.policy, version: e.version, document: e.document }));
    return { device: p.device, context, policies, compiled: compilePolicies(named, context) };
  }

  /** The documents that apply to the device: the built-in Cloud IoT Core grants, then registry → device type → device. */
  async effectivePolicies(device: DeviceName): Promise<EffectivePolicy[]> {
    return this.#effective(await this.#devicePolicies(device));
  }

  /**
   * The broker's entry point: the device's policy compiled for one connection (certSubject from
   * the client certificate it authenticated with; a function is called only when a document reads
   * `${cert.subject.*}`). Undefined when the device no longer exists.
   *
   * The documents are read from the store every time (a reconnect sees the current ones), except
   * in a registry known to have no attachment at all: there the device gets the built-in grants
   * without a query (`name`: the device as just authenticated, whose deletion its revocation
   * covers). That fact is forgotten on every PoliciesChanged of the registry, which every change
   * that can attach a policy announces (attachPolicy), before the event is published. The
   * compiled form of a set of documents is shared by every connection that has it; a connection
   * keeps only its variable values.
   */
  async compileForDevice(
    numId: string,
    certSubject?: CertSubject | (() => CertSubject),
    name?: DeviceName,
  ): Promise<ConnectionPolicy | undefined> {
    if (name && !(await this.#hasAttachments(name))) {
      const device: DeviceName = { project: name.project, location: name.location, registry: name.registry, device: name.device };
      const context: PolicyContext = { registryId: name.registry, deviceId: name.device, deviceNumId: numId, metadata: {} };
      return { device, compiled: this.#template([]).bind(context) };
    }
    const p = await this.#store.policies.devicePolicies(numId);
    if (!p) return undefined;
    const template = this.#template(p.policies);
    const subject = template.usesCertSubject && certSubject ? (typeof certSubject === 'function' ? certSubject() : certSubject) : undefined;
    const context: PolicyContext = {
      registryId: p.device.registry,
      deviceId: p.device.device,
      deviceNumId: p.numId,
      metadata: p.metadata,
      ...(subject ? { certSubject: subject } : {}),
    };
    return { device: p.device, compiled: template.bind(context) };
  }

  /** Whether the registry has attachments; the answer is kept until its next PoliciesChanged. */
  async #hasAttachments(name: RegistryName): Promise<boolean> {
    const key = formatRegistry(name);
    const known = this.#attached.get(key);
    if (known !== undefined) return known;
    const generation = this.#generation;
    const has = await this.#store.policies.hasPolicyAttachments(registryOf(name));
    // A change announced while the store was read may already be stale in this answer.
    if (generation === this.#generation) {
      if (this.#attached.size >= ATTACHED_CACHE_SIZE) this.#attached.clear();
      this.#attached.set(key, has);
    }
    return has;
  }

  /** Forgets what is known of the registry's attachments; runs before every PoliciesChanged is seen. */
  #forget(registry: string): void {
    this.#generation++;
    this.#attached.delete(registry);
  }

  /** The shared compiled form of the device's documents (the built-in grants first, as #effective). */
  #template(policies: DevicePolicies['policies']): PolicyTemplate {
    // Document text, not policy id and version: a policy deleted and made again reuses its versions.
    let key = '';
    for (const e of policies) key += `${e.policyId}\u0000${e.version}\u0000${e.document}\u0000`;
    let template = this.#templates.get(key);
    if (template) return template;
    const named: NamedPolicyDocument[] = this.#effective({ policies }).map((e) => ({ name: e.policy, version: e.version, document: e.document }));
    template = compilePolicyTemplate(named);
    if (this.#templates.size >= PARSED_CACHE_SIZE) this.#templates.delete(this.#templates.keys().next().value as string);
    this.#templates.set(key, template);
    return template;
  }

  /**
   * Dry run: would the device be allowed `action` on `resource` (a topic name; a filter for
   * subscribe; a device id for connect), and by which statement. With `certificateFingerprint`,
   * `${cert.subject.*}` resolve from that registered certificate of the device.
   */
  async testDevicePolicy(
    device: DeviceName,
    action: string,
    resource: string,
    options: { readonly certificateFingerprint?: string } = {},
  ): Promise<DryRunDecision> {
    if (!(POLICY_ACTIONS as readonly string[]).includes(action)) throw fieldError('action', `must be one of ${POLICY_ACTIONS.join(', ')}`);
    if (typeof resource !== 'string' || resource === '') throw fieldError('resource', 'is required');
    const p = await this.#devicePolicies(device);
    let certSubject: PolicyContext['certSubject'];
    if (options.certificateFingerprint !== undefined) {
      const fp = options.certificateFingerprint.toLowerCase();
      const cert = /^[0-9a-f]{64}$/.test(fp) ? await this.#store.getDeviceCertificate(fp) : undefined;
      if (!cert || cert.deviceNumId !== p.numId)
        throw notFound(`Device ${formatDevice(p.device)} has no certificate with fingerprint ${options.certificateFingerprint}.`);
      certSubject = certSubjectFromFields(certificateFields(parseCertificatePem(cert.pem, 'certificate')));
    }
    const { compiled } = this.#compile(p, certSubject);
    const decision = compiled.decide(action as PolicyAction, resource, 'resource');
    return { ...decision, unresolved: compiled.unresolved };
  }

  // ---- live effect ---------------------------------------------------------------------------

  /** A change to the policy's default document reaches whatever it is attached to (nothing: no event). */
  async #announcePolicy(r: RegistryName, id: string): Promise<void> {
    const attachments = await this.#store.policies.listPolicyAttachments(r, id);
    if (attachments.length === 0) return;
    const registry = formatRegistry(r);
    this.#forget(registry);
    if (attachments.some((a) => a.target.kind !== 'device')) {
      this.#bus.publishPoliciesChanged({ registry });
    } else {
      const devices = attachments.flatMap((a) => (a.deviceId !== undefined ? [formatDevice({ ...r, device: a.deviceId })] : []));
      this.#bus.publishPoliciesChanged({ registry, devices });
    }
    this.#logger.info({ registry, policy: id }, 'policy changed for attached devices');
  }

  #announceTarget(r: RegistryName, target: PolicyTarget, device: DeviceName | undefined): void {
    const registry = formatRegistry(r);
    this.#forget(registry);
    // A device type is a metadata value, which the store cannot index: every device rechecks.
    if (target.kind === 'device' && device) this.#bus.publishPoliciesChanged({ registry, devices: [formatDevice(device)] });
    else this.#bus.publishPoliciesChanged({ registry });
  }
}

function checkVersion(version: number): void {
  if (!Number.isSafeInteger(version) || version < 1) throw fieldError('version', 'must be a positive integer');
}

function checkDeviceType(value: unknown): string {
  if (typeof value !== 'string' || value === '') throw fieldError('target.deviceType', "must be the non-empty value of a device's 'type' metadata");
  if (value.length > DEVICE_TYPE_MAX_CHARS || CONTROL.test(value))
    throw fieldError('target.deviceType', `must be at most ${DEVICE_TYPE_MAX_CHARS} characters without control characters`);
  return value;
}

function sameTarget(a: PolicyTarget, b: PolicyTarget): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'device-type' && b.kind === 'device-type') return a.deviceType === b.deviceType;
  if (a.kind === 'device' && b.kind === 'device') return a.numId === b.numId;
  return true;
}

function viewOf(target: PolicyTarget, device?: DeviceName | { device: string }): PolicyTargetView {
  if (target.kind === 'registry') return { registry: true };
  if (target.kind === 'device-type') return { deviceType: target.deviceType };
  return { deviceId: device?.device ?? target.numId, deviceNumId: target.numId };
}

function toAttachment(a: StoredPolicyAttachment): PolicyAttachment {
  return { policyId: a.policyId, target: viewOf(a.target, a.deviceId !== undefined ? { device: a.deviceId } : undefined), createTime: a.createTime };
}

function describeTarget(target: PolicyTarget, device: DeviceName | undefined): string {
  if (target.kind === 'registry') return 'the registry';
  if (target.kind === 'device-type') return `device type '${target.deviceType}'`;
  return `device ${device?.device ?? target.numId}`;
}
