/**
 * # Device policy documents
 *
 * A policy says which MQTT actions a device may take on which topics. The shape follows AWS IoT
 * (IAM-style Effect / Action / Resource) with our own, lower-case names, and MQTT wildcard
 * semantics instead of AWS's `*`/`?` globbing:
 *
 * ```json
 * {
 *   "version": "2026-01-01",
 *   "statements": [
 *     { "sid": "telemetry", "effect": "Allow", "actions": ["publish"],
 *       "resources": ["building/${device.metadata.building}/floor/${device.metadata.floor}/temp/${device.id}"] },
 *     { "effect": "Deny", "actions": ["publish", "retain"], "resources": ["/devices/${device.id}/state"] }
 *   ]
 * }
 * ```
 *
 * | ours         | AWS IoT                            | meaning                                       |
 * |--------------|------------------------------------|-----------------------------------------------|
 * | `version`    | `Version`                          | policy language version; only `2026-01-01`    |
 * | `statements` | `Statement`                        | 1–100 statements                              |
 * | `sid`        | `Sid`                              | optional name, `[A-Za-z0-9_.-]{1,128}`, unique |
 * | `effect`     | `Effect`                           | `Allow` or `Deny`                             |
 * | `actions`    | `Action`                           | non-empty list, see below                     |
 * | `resources`  | `Resource`                         | non-empty list (≤ 50) of topic filters        |
 *
 * Actions (AWS name in brackets):
 * - `connect` [iot:Connect]: the device may open an MQTT connection. Its resources are device ids
 *   (one level): `${device.id}`, a literal id, or `+`/`#` for any device of the registry.
 * - `publish` [iot:Publish]: PUBLISH on a topic name (also a will message's topic).
 * - `retain` [iot:RetainPublish]: keep a PUBLISH as the retained message; the broker checks
 *   `publish` too, so `retain` alone grants nothing.
 * - `subscribe` [iot:Subscribe]: SUBSCRIBE with a filter. Unlike AWS (which compares the filter
 *   text), a filter is allowed only when **every topic it can match is allowed**: one Allow
 *   resource covers it and no Deny resource shares a topic with it. So a Deny on `a/b` cannot be
 *   bypassed by subscribing to `a/#` or `a/+`. `$share/{group}/{filter}` is judged by `{filter}`.
 * - `receive` [iot:Receive]: a message is delivered to the device. Checked on every delivery, so
 *   tightening a policy cuts off a live subscriber at once.
 *
 * Resources are MQTT topic filters in the registry's own topic space (a registry never reaches
 * another registry's topics): `+` is one whole level, `#` the last level and everything below
 * (including the parent: `a/#` matches `a`), a wildcard in the first level never matches a
 * `$`-topic. The Cloud IoT Core device topics (`/devices/{id}/events/#`, `/state`, `/config`,
 * `/commands/#`, …) live in the same space. No NUL; at most 65535 bytes.
 *
 * Variables (variables.ts), resolved for each connection: `${registry.id}`, `${device.id}`,
 * `${device.numId}`, `${device.metadata.KEY}`, `${cert.subject.CN}` (and `O`, `OU`, `C`, `ST`,
 * `L`, `serialNumber`, `dnQualifier`). A variable with no value, or whose value contains `/`, `+`,
 * `#` or NUL, makes its resource match nothing — it can never widen a grant.
 *
 * Evaluation (evaluate.ts), over every document that applies to the device (the union of those
 * attached to its registry, its type and itself, plus the built-in Cloud IoT Core document):
 * an explicit Deny wins; otherwise any Allow grants; no matching statement denies.
 *
 * Limits: a document is at most 20 KiB as compact JSON (AWS: 2048 characters; ours is larger
 * because MQTT filters cannot use `*` to abbreviate), at most 100 statements, 50 resources per
 * statement. Parsing is strict: unknown keys, empty lists, duplicates, unknown actions, invalid
 * filters and unknown variables are refused with a google.rpc field violation naming the field,
 * e.g. `policy.statements[2].resources[0]`.
 */
import { fieldError, KeywayError } from '../domain/errors.js';
import { parseResourceTemplate } from './resource.js';

export const POLICY_LANGUAGE_VERSION = '2026-01-01';
export const POLICY_ACTIONS = ['connect', 'publish', 'subscribe', 'receive', 'retain'] as const;
export type PolicyAction = (typeof POLICY_ACTIONS)[number];
/** Actions whose resource is a topic name (checked with `can`); subscribe takes a filter. */
export type TopicAction = 'publish' | 'receive' | 'retain';
export const POLICY_EFFECTS = ['Allow', 'Deny'] as const;
export type PolicyEffect = (typeof POLICY_EFFECTS)[number];

export const POLICY_LIMITS = {
  /** The document as compact JSON (JSON.stringify without spaces), UTF-8. */
  documentBytes: 20 * 1024,
  /** Raw JSON text accepted before parsing (whitespace included). */
  rawTextBytes: 64 * 1024,
  statements: 100,
  resourcesPerStatement: 50,
  sidChars: 128,
} as const;

export interface PolicyStatement {
  readonly sid?: string;
  readonly effect: PolicyEffect;
  readonly actions: readonly PolicyAction[];
  readonly resources: readonly string[];
}

export interface PolicyDocument {
  readonly version: typeof POLICY_LANGUAGE_VERSION;
  readonly statements: readonly PolicyStatement[];
}

const SID = /^[A-Za-z0-9_.-]{1,128}$/;
const DOCUMENT_KEYS = ['version', 'statements'];
const STATEMENT_KEYS = ['sid', 'effect', 'actions', 'resources'];
/** AWS spellings a user may bring along, with the key we use instead. */
const AWS_HINTS: Record<string, string> = {
  statement: 'statements',
  action: 'actions',
  resource: 'resources',
};

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function checkKeys(obj: Record<string, unknown>, allowed: readonly string[], field: string): void {
  for (const key of Object.keys(obj)) {
    if (allowed.includes(key)) continue;
    const lower = key.toLowerCase();
    const hint = allowed.includes(lower) ? lower : AWS_HINTS[lower];
    throw fieldError(`${field}.${key}`, `unknown field${hint ? ` (did you mean '${hint}'?)` : ''}; allowed: ${allowed.join(', ')}`);
  }
}

function nonEmptyArray(v: unknown, field: string, max: number): unknown[] {
  if (!Array.isArray(v)) throw fieldError(field, 'must be a list');
  if (v.length === 0) throw fieldError(field, 'must not be empty');
  if (v.length > max) throw fieldError(field, `has ${v.length} entries; at most ${max} are allowed`);
  return v;
}

function parseStatement(raw: unknown, field: string): PolicyStatement {
  if (!isPlainObject(raw)) throw fieldError(field, 'must be an object');
  checkKeys(raw, STATEMENT_KEYS, field);
  let sid: string | undefined;
  if (raw.sid !== undefined) {
    if (typeof raw.sid !== 'string' || !SID.test(raw.sid))
      throw fieldError(`${field}.sid`, `must match [A-Za-z0-9_.-] and be 1 to ${POLICY_LIMITS.sidChars} characters`);
    sid = raw.sid;
  }
  if (raw.effect === undefined) throw fieldError(`${field}.effect`, "is required: 'Allow' or 'Deny'");
  if (!(POLICY_EFFECTS as readonly unknown[]).includes(raw.effect))
    throw fieldError(`${field}.effect`, "must be 'Allow' or 'Deny'");
  const actions = nonEmptyArray(raw.actions, `${field}.actions`, POLICY_ACTIONS.length * 2).map((a, i) => {
    if (!(POLICY_ACTIONS as readonly unknown[]).includes(a))
      throw fieldError(`${field}.actions[${i}]`, `must be one of ${POLICY_ACTIONS.join(', ')}`);
    return a as PolicyAction;
  });
  if (new Set(actions).size !== actions.length) throw fieldError(`${field}.actions`, 'lists an action twice');
  const connect = actions.includes('connect');
  const resources = nonEmptyArray(raw.resources, `${field}.resources`, POLICY_LIMITS.resourcesPerStatement).map((r, i) => {
    parseResourceTemplate(r, `${field}.resources[${i}]`, connect);
    return r as string;
  });
  if (new Set(resources).size !== resources.length) throw fieldError(`${field}.resources`, 'lists a resource twice');
  return Object.freeze({
    ...(sid !== undefined ? { sid } : {}),
    effect: raw.effect as PolicyEffect,
    actions: Object.freeze(actions),
    resources: Object.freeze(resources),
  });
}

/**
 * Parses and checks a policy document given as JSON text or as an already parsed JSON value.
 * Returns a frozen copy; throws KeywayError(INVALID_ARGUMENT) with a field violation under
 * `field` for anything it refuses.
 */
export function parsePolicyDocument(input: unknown, field = 'policy'): PolicyDocument {
  let value = input;
  if (typeof input === 'string') {
    if (Buffer.byteLength(input, 'utf8') > POLICY_LIMITS.rawTextBytes)
      throw fieldError(field, `exceeds ${POLICY_LIMITS.rawTextBytes} bytes of JSON text`);
    try {
      value = JSON.parse(input);
    } catch (e) {
      throw fieldError(field, `is not valid JSON: ${(e as Error).message}`);
    }
  }
  if (!isPlainObject(value)) throw fieldError(field, 'must be a JSON object');
  let compact: string;
  try {
    compact = JSON.stringify(value);
  } catch {
    throw fieldError(field, 'is not a JSON value');
  }
  const bytes = Buffer.byteLength(compact, 'utf8');
  if (bytes > POLICY_LIMITS.documentBytes)
    throw fieldError(field, `is ${bytes} bytes as compact JSON; at most ${POLICY_LIMITS.documentBytes} are allowed`);
  checkKeys(value, DOCUMENT_KEYS, field);
  if (value.version !== POLICY_LANGUAGE_VERSION)
    throw fieldError(`${field}.version`, `must be '${POLICY_LANGUAGE_VERSION}'`);
  const statements = nonEmptyArray(value.statements, `${field}.statements`, POLICY_LIMITS.statements).map((s, i) =>
    parseStatement(s, `${field}.statements[${i}]`),
  );
  const sids = new Set<string>();
  statements.forEach((s, i) => {
    if (s.sid === undefined) return;
    if (sids.has(s.sid)) throw fieldError(`${field}.statements[${i}].sid`, `'${s.sid}' is used by an earlier statement`);
    sids.add(s.sid);
  });
  return Object.freeze({ version: POLICY_LANGUAGE_VERSION, statements: Object.freeze(statements) });
}

/** parsePolicyDocument that returns the error instead of throwing (for lint-style callers). */
export function tryParsePolicyDocument(input: unknown, field = 'policy'): PolicyDocument | KeywayError {
  try {
    return parsePolicyDocument(input, field);
  } catch (e) {
    if (e instanceof KeywayError) return e;
    throw e;
  }
}
