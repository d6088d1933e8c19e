/**
 * Admin API routes of device policies (Keyway extension), under a registry:
 * `…/registries/{registry}/policies[/{policy}[/versions[/{version}]|:verb|/attachments]]`,
 * `…/policies:lint`, and per device `…/devices/{device}/policies` (effective, in order) and
 * `…/devices/{device}:testPolicy` (dry run). Appended to ADMIN_ROUTES in routes.ts.
 */
import { fieldError, KeywayError } from '../domain/errors.js';
import type { RegistryName } from '../domain/names.js';
import type { PolicyLintFinding } from '../policy/index.js';
import type {
  DryRunDecision,
  EffectivePolicy,
  Policy,
  PolicyAttachment,
  PolicyService,
  PolicyTargetInput,
  PolicyVersion,
} from '../registry/policy-service.js';
import { formatRegistry } from '../domain/names.js';
import { enumOf, object, query, string, timestamp, type JsonSchema } from './json-schemas.js';
import { DEVICE, deviceOf, REGISTRY, registryOf as registryNamed } from './route-paths.js';
import type { ApiRoute, RouteDeps, RouteRequest } from './routes.js';

const POLICIES = `${REGISTRY}/policies`;
const POLICY = `${POLICIES}/{policy}`;
const operation = 'keyway.projects.locations.registries.policies';

// ---- wire types ----------------------------------------------------------------------------

export interface ApiPolicy {
  readonly name: string;
  readonly id: string;
  readonly defaultVersion: number;
  readonly document: unknown;
  readonly createTime: string;
  readonly updateTime: string;
  /** On create only: what lint found (warnings, or errors stored with force). */
  readonly lintFindings?: PolicyLintFinding[];
}

export interface ApiPolicyVersion {
  readonly name: string;
  readonly version: number;
  readonly document: unknown;
  readonly isDefault: boolean;
  readonly createTime: string;
  readonly lintFindings?: PolicyLintFinding[];
}

export type ApiPolicyTarget = { readonly registry: true } | { readonly deviceId: string; readonly deviceNumId?: string } | { readonly deviceType: string };

export interface ApiPolicyAttachment {
  readonly policy: string;
  readonly target: ApiPolicyTarget;
  readonly createTime: string;
}

export interface ApiEffectivePolicy {
  readonly policy: string;
  readonly version: number;
  readonly via: string;
  readonly document: unknown;
}

export interface ApiStatementRef {
  readonly policy: string;
  readonly version: number;
  readonly statement: number;
  readonly sid?: string;
  readonly effect: string;
  readonly resource: string;
  readonly resolved: string;
}

export interface ApiPolicyDecision {
  readonly allowed: boolean;
  readonly reason: 'ALLOW' | 'EXPLICIT_DENY' | 'IMPLICIT_DENY';
  readonly statement?: ApiStatementRef;
  readonly unresolved?: { policy: string; version: number; statement: number; sid?: string; resource: string; variable: string; problem: string }[];
}

// ---- schemas -------------------------------------------------------------------------------

/** A document is checked by the policy parser, which names the offending field; here it only has to be an object. */
const DocumentSchema: JsonSchema = { type: 'object' };
const AnyDocument: JsonSchema = {};

const LintFindingSchema = object(
  'PolicyLintFinding',
  { code: string(), severity: enumOf(['error', 'warning']), statement: { type: 'integer' }, sid: string(), resource: string(65535), message: string(4096) },
  ['code', 'severity', 'statement', 'resource', 'message'],
);
const lintFindings: JsonSchema = { type: 'array', items: LintFindingSchema };

const PolicySchema = object(
  'Policy',
  {
    name: string(),
    id: string(),
    defaultVersion: { type: 'integer' },
    document: AnyDocument,
    createTime: timestamp,
    updateTime: timestamp,
    lintFindings,
  },
  ['name', 'id', 'defaultVersion', 'document', 'createTime', 'updateTime'],
);
const PolicyVersionSchema = object(
  'PolicyVersion',
  { name: string(), version: { type: 'integer' }, document: AnyDocument, isDefault: { type: 'boolean' }, createTime: timestamp, lintFindings },
  ['name', 'version', 'document', 'isDefault', 'createTime'],
);
const TargetSchema = object('PolicyTarget', {
  registry: { type: 'boolean' },
  deviceId: string(256),
  deviceNumId: string(32),
  deviceType: string(1024),
});
const RequestTargetSchema = object('PolicyTargetRequest', {
  registry: { type: 'boolean', enum: [true] },
  deviceId: string(256),
  deviceType: string(1024),
});
const AttachmentSchema = object('PolicyAttachment', { policy: string(), target: TargetSchema, createTime: timestamp }, ['policy', 'target', 'createTime']);
const StatementRefSchema = object(
  'PolicyStatementRef',
  {
    policy: string(),
    version: { type: 'integer' },
    statement: { type: 'integer' },
    sid: string(),
    effect: enumOf(['Allow', 'Deny']),
    resource: string(65535),
    resolved: string(65535),
  },
  ['policy', 'version', 'statement', 'effect', 'resource', 'resolved'],
);
const UnresolvedSchema = object('PolicyUnresolvedResource', {
  policy: string(),
  version: { type: 'integer' },
  statement: { type: 'integer' },
  sid: string(),
  resource: string(65535),
  variable: string(),
  problem: string(),
});
const DecisionSchema = object(
  'PolicyDecision',
  {
    allowed: { type: 'boolean' },
    reason: enumOf(['ALLOW', 'EXPLICIT_DENY', 'IMPLICIT_DENY']),
    statement: StatementRefSchema,
    unresolved: { type: 'array', items: UnresolvedSchema },
  },
  ['allowed', 'reason'],
);
const EffectivePolicySchema = object(
  'EffectivePolicy',
  { policy: string(), version: { type: 'integer' }, via: enumOf(['builtin', 'registry', 'device-type', 'device']), document: AnyDocument },
  ['policy', 'version', 'via', 'document'],
);
const EmptySchema = object('PolicyEmpty', {});

// ---- handlers ------------------------------------------------------------------------------

function policies(deps: RouteDeps): PolicyService {
  if (!deps.policies) throw new KeywayError('UNIMPLEMENTED', 'This server has no policy service.');
  return deps.policies;
}

const registryOf = (p: RouteRequest['params']): RegistryName => registryNamed(p, 'parent');
const policyName = (r: RegistryName, id: string): string => `${formatRegistry(r)}/policies/${id}`;

function versionOf(p: RouteRequest['params']): number {
  const v = p.version ?? '';
  if (!/^[1-9][0-9]{0,8}$/.test(v)) throw fieldError('version', 'must be a positive integer');
  return Number(v);
}

export function policyToJson(p: Policy, findings?: readonly PolicyLintFinding[]): ApiPolicy {
  return {
    name: policyName(p.registry, p.id),
    id: p.id,
    defaultVersion: p.defaultVersion,
    document: p.document,
    createTime: p.createTime.toISOString(),
    updateTime: p.updateTime.toISOString(),
    ...(findings ? { lintFindings: [...findings] } : {}),
  };
}

function versionToJson(r: RegistryName, id: string, v: PolicyVersion, findings?: readonly PolicyLintFinding[]): ApiPolicyVersion {
  return {
    name: `${policyName(r, id)}/versions/${v.version}`,
    version: v.version,
    document: v.document,
    isDefault: v.isDefault,
    createTime: v.createTime.toISOString(),
    ...(findings ? { lintFindings: [...findings] } : {}),
  };
}

const attachmentToJson = (r: RegistryName, a: PolicyAttachment): ApiPolicyAttachment => ({
  policy: policyName(r, a.policyId),
  target: a.target,
  createTime: a.createTime.toISOString(),
});

const effectiveToJson = (e: EffectivePolicy): ApiEffectivePolicy => ({ policy: e.policy, version: e.version, via: e.via, document: e.document });

export const decisionToJson = (d: DryRunDecision): ApiPolicyDecision => ({
  allowed: d.allowed,
  reason: d.reason,
  ...('statement' in d ? { statement: { ...d.statement } } : {}),
  ...(d.unresolved.length ? { unresolved: d.unresolved.map((u) => ({ ...u })) } : {}),
});

function targetOf(body: unknown): PolicyTargetInput {
  const t = (body as { target?: unknown }).target;
  if (typeof t !== 'object' || t === null) throw fieldError('target', 'is required: {registry: true}, {deviceId} or {deviceType}');
  return t as PolicyTargetInput;
}

const force = (body: unknown): boolean => (body as { force?: boolean }).force === true;

export const POLICY_ROUTES: readonly ApiRoute[] = [
  {
    operationId: `${operation}.create`,
    permission: 'policies.create',
    method: 'POST',
    path: POLICIES,
    summary: 'Creates a device policy; its document becomes version 1, the default. Lint errors refuse it unless force is true.',
    body: object('CreatePolicyRequest', { id: string(256), document: DocumentSchema, force: { type: 'boolean' } }, ['id', 'document']),
    response: PolicySchema,
    handle: async ({ params, body }, deps) => {
      const b = body as { id: string; document: unknown };
      const { policy, lintFindings } = await policies(deps).createPolicy(registryOf(params), b.id, b.document, { force: force(body) });
      return policyToJson(policy, lintFindings);
    },
  },
  {
    operationId: `${operation}.list`,
    permission: 'policies.list',
    method: 'GET',
    path: POLICIES,
    summary: "Lists the registry's policies with their default documents.",
    query: { properties: { pageSize: query.uint, pageToken: query.string } },
    response: object('ListPoliciesResponse', { policies: { type: 'array', items: PolicySchema }, nextPageToken: string() }),
    handle: async ({ params, query: q }, deps) => {
      const page = await policies(deps).listPolicies(registryOf(params), {
        ...(typeof q.pageSize === 'string' ? { pageSize: Number(q.pageSize) } : {}),
        ...(typeof q.pageToken === 'string' ? { pageToken: q.pageToken } : {}),
      });
      return {
        ...(page.items.length ? { policies: page.items.map((p) => policyToJson(p)) } : {}),
        ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}),
      };
    },
  },
  {
    operationId: `${operation}.lint`,
    permission: 'policies.simulate',
    method: 'POST',
    path: `${POLICIES}:lint`,
    summary: 'Checks a document for over-permissive grants without storing it.',
    body: object('LintPolicyRequest', { document: DocumentSchema }, ['document']),
    response: object('LintPolicyResponse', { findings: lintFindings }),
    handle: async ({ body }, deps) => {
      const findings = policies(deps).lint((body as { document: unknown }).document);
      return findings.length ? { findings } : {};
    },
  },
  {
    operationId: `${operation}.get`,
    permission: 'policies.get',
    method: 'GET',
    path: POLICY,
    summary: 'Gets a policy with its default document.',
    response: PolicySchema,
    handle: async ({ params }, deps) => policyToJson(await policies(deps).getPolicy(registryOf(params), params.policy ?? '')),
  },
  {
    operationId: `${operation}.delete`,
    permission: 'policies.delete',
    method: 'DELETE',
    path: POLICY,
    summary: 'Deletes a policy and its versions; refused while it is attached.',
    response: EmptySchema,
    handle: async ({ params }, deps) => {
      await policies(deps).deletePolicy(registryOf(params), params.policy ?? '');
      return {};
    },
  },
  {
    operationId: `${operation}.versions.create`,
    permission: 'policies.update',
    method: 'POST',
    path: `${POLICY}/versions`,
    summary: 'Adds a version (at most 5 are kept: delete one first); setAsDefault makes it apply at once.',
    body: object('CreatePolicyVersionRequest', { document: DocumentSchema, setAsDefault: { type: 'boolean' }, force: { type: 'boolean' } }, ['document']),
    response: PolicyVersionSchema,
    handle: async ({ params, body }, deps) => {
      const b = body as { document: unknown; setAsDefault?: boolean };
      const r = registryOf(params);
      const id = params.policy ?? '';
      const { version, lintFindings } = await policies(deps).createPolicyVersion(r, id, b.document, {
        setAsDefault: b.setAsDefault === true,
        force: force(body),
      });
      return versionToJson(r, id, version, lintFindings);
    },
  },
  {
    operationId: `${operation}.versions.list`,
    permission: 'policies.get',
    method: 'GET',
    path: `${POLICY}/versions`,
    summary: "Lists a policy's kept versions, oldest first.",
    response: object('ListPolicyVersionsResponse', { versions: { type: 'array', items: PolicyVersionSchema } }),
    handle: async ({ params }, deps) => {
      const r = registryOf(params);
      const id = params.policy ?? '';
      const versions = await policies(deps).listPolicyVersions(r, id);
      return { versions: versions.map((v) => versionToJson(r, id, v)) };
    },
  },
  {
    operationId: `${operation}.versions.delete`,
    permission: 'policies.update',
    method: 'DELETE',
    path: `${POLICY}/versions/{version}`,
    summary: 'Deletes a version that is not the default.',
    response: EmptySchema,
    handle: async ({ params }, deps) => {
      await policies(deps).deletePolicyVersion(registryOf(params), params.policy ?? '', versionOf(params));
      return {};
    },
  },
  {
    operationId: `${operation}.setDefaultVersion`,
    permission: 'policies.update',
    method: 'POST',
    path: `${POLICY}:setDefaultVersion`,
    summary: "Makes a kept version the policy's default; live connections recompile within a second.",
    body: object('SetDefaultPolicyVersionRequest', { version: { type: 'integer', minimum: 1, maximum: 999_999_999 } }, ['version']),
    response: PolicySchema,
    handle: async ({ params, body }, deps) =>
      policyToJson(await policies(deps).setDefaultPolicyVersion(registryOf(params), params.policy ?? '', (body as { version: number }).version)),
  },
  {
    operationId: `${operation}.attach`,
    permission: 'policies.attach',
    method: 'POST',
    path: `${POLICY}:attach`,
    summary: "Attaches the policy to the registry, a device type (a device's 'type' metadata) or a device.",
    body: object('AttachPolicyRequest', { target: RequestTargetSchema }, ['target']),
    response: AttachmentSchema,
    handle: async ({ params, body }, deps) => {
      const r = registryOf(params);
      return attachmentToJson(r, await policies(deps).attachPolicy(r, params.policy ?? '', targetOf(body)));
    },
  },
  {
    operationId: `${operation}.detach`,
    permission: 'policies.attach',
    method: 'POST',
    path: `${POLICY}:detach`,
    summary: 'Detaches the policy from a target.',
    body: object('DetachPolicyRequest', { target: RequestTargetSchema }, ['target']),
    response: EmptySchema,
    handle: async ({ params, body }, deps) => {
      await policies(deps).detachPolicy(registryOf(params), params.policy ?? '', targetOf(body));
      return {};
    },
  },
  {
    operationId: `${operation}.attachments.list`,
    permission: 'policies.get',
    method: 'GET',
    path: `${POLICY}/attachments`,
    summary: "Lists the policy's attachments.",
    response: object('ListPolicyAttachmentsResponse', { attachments: { type: 'array', items: AttachmentSchema } }),
    handle: async ({ params }, deps) => {
      const r = registryOf(params);
      const list = await policies(deps).listPolicyAttachments(r, params.policy ?? '');
      return list.length ? { attachments: list.map((a) => attachmentToJson(r, a)) } : {};
    },
  },
  {
    operationId: 'keyway.projects.locations.registries.devices.policies.list',
    permission: 'policies.get',
    method: 'GET',
    path: `${DEVICE}/policies`,
    summary: 'The documents that apply to the device, in evaluation order: built-in, registry, device type, device.',
    response: object('ListEffectivePoliciesResponse', { policies: { type: 'array', items: EffectivePolicySchema } }),
    handle: async ({ params }, deps) => ({ policies: (await policies(deps).effectivePolicies(deviceOf(params))).map(effectiveToJson) }),
  },
  {
    operationId: 'keyway.projects.locations.registries.devices.testPolicy',
    permission: 'policies.simulate',
    method: 'POST',
    path: `${DEVICE}:testPolicy`,
    summary: 'Dry run: would the device be allowed the action on the topic (filter for subscribe), and by which statement.',
    body: object(
      'TestDevicePolicyRequest',
      { action: enumOf(['connect', 'publish', 'subscribe', 'receive', 'retain']), resource: string(65535), certificateFingerprint: string(64) },
      ['action', 'resource'],
    ),
    response: DecisionSchema,
    handle: async ({ params, body }, deps) => {
      const b = body as { action: string; resource: string; certificateFingerprint?: string };
      const decision = await policies(deps).testDevicePolicy(deviceOf(params), b.action, b.resource, {
        ...(b.certificateFingerprint !== undefined ? { certificateFingerprint: b.certificateFingerprint } : {}),
      });
      return decisionToJson(decision);
    },
  },
];
