/**
 * Policy evaluation. `compilePolicies` resolves every resource of the documents that apply to one
 * connection against its context, once, and returns a CompiledPolicy whose checks are plain
 * string work: `can` runs on every PUBLISH and on every delivery (receive), so literal resources
 * sit in hash maps and only wildcard resources are walked.
 *
 * Logic (IAM's): a matching Deny wins over everything; otherwise a matching Allow grants;
 * otherwise the answer is no (implicit deny). Subscribe is stricter than matching: a filter is
 * granted only when one Allow resource covers every topic it can match and no Deny resource
 * shares a single topic with it.
 *
 * Recompile when anything the result depends on changes: a document, an attachment, the device's
 * metadata (variables). The object is immutable; swap it on the connection.
 */
import { fieldError } from '../domain/errors.js';
import type { PolicyAction, PolicyDocument, PolicyEffect, PolicyStatement, TopicAction } from './document.js';
import { isUnresolved, parseResourceTemplate, resolveTemplate, type ResourceTemplate } from './resource.js';
import {
  covers, filterLevels, filterProblem, formatLevels, hasWildcard, intersects, INVALID_NAME, matchesTopic, subscriptionFilter,
  topicNameProblem, type Levels,
} from './topic-filter.js';
import type { PolicyContext } from './variables.js';

/** A document with the identity decisions report it by. */
export interface NamedPolicyDocument {
  /** Stable name, e.g. the policy's resource name; shown in decisions and audit entries. */
  readonly name: string;
  /** The version of that policy the document is. */
  readonly version: number;
  readonly document: PolicyDocument;
}

/** The statement (and resource) that decided. */
export interface StatementRef {
  readonly policy: string;
  readonly version: number;
  /** Index in the document's `statements`. */
  readonly statement: number;
  readonly sid?: string;
  readonly effect: PolicyEffect;
  /** The resource as written, variables included. */
  readonly resource: string;
  /** The resource after substitution (what was matched). */
  readonly resolved: string;
}

export type PolicyDecision =
  | { readonly allowed: true; readonly reason: 'ALLOW'; readonly statement: StatementRef }
  | { readonly allowed: false; readonly reason: 'EXPLICIT_DENY'; readonly statement: StatementRef }
  | { readonly allowed: false; readonly reason: 'IMPLICIT_DENY' };

/** A resource that matches nothing in this context because a variable would not resolve safely. */
export interface UnresolvedResource {
  readonly policy: string;
  readonly version: number;
  readonly statement: number;
  readonly sid?: string;
  readonly resource: string;
  readonly variable: string;
  readonly problem: string;
}

export interface CompiledPolicy {
  /**
   * Fast check for connect (name = the device id) and publish/receive/retain (name = a topic
   * name). A name that is not a valid topic name is refused. A retained publish needs both
   * `publish` and `retain`.
   */
  can(action: 'connect' | TopicAction, name: string): boolean;
  /** Fast check of a SUBSCRIBE filter (`$share/{group}/` is stripped); an invalid filter is refused. */
  canSubscribe(filter: string): boolean;
  /**
   * The decision with the statement that made it, for the dry-run endpoint and audit entries.
   * Throws a field error under `field` when the resource is not a valid topic name, filter
   * (subscribe) or device id (connect).
   */
  decide(action: PolicyAction, resource: string, field?: string): PolicyDecision;
  /** Resources that match nothing here, and why (for the dry-run and lint output). */
  readonly unresolved: readonly UnresolvedResource[];
}

interface Entry {
  readonly levels: Levels;
  readonly ref: StatementRef;
}

/** Per action and effect: literal resources in a map, wildcard ones in a list. */
class EffectTable {
  readonly exact = new Map<string, StatementRef>();
  readonly wild: Entry[] = [];
  /** Every entry in document order (subscribe needs the filter algebra on all of them). */
  readonly all: Entry[] = [];

  add(levels: Levels, ref: StatementRef): void {
    const entry = { levels, ref };
    this.all.push(entry);
    if (hasWildcard(levels)) this.wild.push(entry);
    else if (!this.exact.has(ref.resolved)) this.exact.set(ref.resolved, ref);
  }

  /** The first statement whose resource matches the name. */
  match(name: string): StatementRef | undefined {
    const hit = this.exact.get(name);
    if (hit) return hit;
    for (let i = 0; i < this.wild.length; i++) {
      const e = this.wild[i] as Entry;
      if (matchesTopic(e.levels, name)) return e.ref;
    }
    return undefined;
  }

  has(name: string): boolean {
    if (this.exact.has(name)) return true;
    for (let i = 0; i < this.wild.length; i++) if (matchesTopic((this.wild[i] as Entry).levels, name)) return true;
    return false;
  }
}

interface ActionTable {
  readonly allow: EffectTable;
  readonly deny: EffectTable;
}

class Compiled implements CompiledPolicy {
  readonly #tables = new Map<PolicyAction, ActionTable>();

  constructor(readonly unresolved: readonly UnresolvedResource[]) {}

  table(action: PolicyAction): ActionTable {
    let t = this.#tables.get(action);
    if (!t) this.#tables.set(action, (t = { allow: new EffectTable(), deny: new EffectTable() }));
    return t;
  }

  can(action: 'connect' | TopicAction, name: string): boolean {
    const t = this.#tables.get(action);
    if (!t || t.allow.all.length === 0) return false;
    if (name.length === 0 || INVALID_NAME.test(name)) return false;
    if (action === 'connect' && name.includes('/')) return false;
    return !t.deny.has(name) && t.allow.has(name);
  }

  canSubscribe(filter: string): boolean {
    const t = this.#tables.get('subscribe');
    if (!t || t.allow.all.length === 0) return false;
    const f = subscriptionFilter(filter);
    if (f === undefined) return false;
    return this.#decideFilter(t, filterLevels(f)).allowed;
  }

  decide(action: PolicyAction, resource: string, field = 'resource'): PolicyDecision {
    const t = this.#tables.get(action) ?? { allow: new EffectTable(), deny: new EffectTable() };
    if (action === 'subscribe') {
      const f = subscriptionFilter(resource);
      if (f === undefined)
        throw fieldError(field, `'${resource.slice(0, 200)}' is not a valid MQTT topic filter (${filterProblem(resource) ?? 'bad $share prefix'})`);
      return this.#decideFilter(t, filterLevels(f));
    }
    if (action === 'connect') {
      if (resource === '' || resource.includes('/') || INVALID_NAME.test(resource))
        throw fieldError(field, 'a connect resource is a device id');
    } else {
      const problem = topicNameProblem(resource);
      if (problem) throw fieldError(field, `the topic name ${problem}`);
    }
    const deny = t.deny.match(resource);
    if (deny) return { allowed: false, reason: 'EXPLICIT_DENY', statement: deny };
    const allow = t.allow.match(resource);
    if (allow) return { allowed: true, reason: 'ALLOW', statement: allow };
    return IMPLICIT_DENY;
  }

  #decideFilter(t: ActionTable, levels: Levels): PolicyDecision {
    for (const e of t.deny.all)
      if (intersects(e.levels, levels)) return { allowed: false, reason: 'EXPLICIT_DENY', statement: e.ref };
    for (const e of t.allow.all)
      if (covers(e.levels, levels)) return { allowed: true, reason: 'ALLOW', statement: e.ref };
    return IMPLICIT_DENY;
  }
}

const IMPLICIT_DENY: PolicyDecision = Object.freeze({ allowed: false, reason: 'IMPLICIT_DENY' });

/**
 * Compiles the documents that apply to one connection. The documents must come from
 * parsePolicyDocument (they are trusted to be valid). Order matters only for which statement a
 * decision names: the first matching one in the order given.
 */
/** Parsed templates per statement: documents are immutable, and compiling runs on every CONNECT. */
const TEMPLATES = new WeakMap<PolicyStatement, readonly ResourceTemplate[]>();

export function templatesOf(s: PolicyStatement): readonly ResourceTemplate[] {
  let t = TEMPLATES.get(s);
  if (!t) {
    const connect = s.actions.includes('connect');
    TEMPLATES.set(s, (t = s.resources.map((r) => parseResourceTemplate(r, 'resource', connect))));
  }
  return t;
}

export function compilePolicies(documents: readonly NamedPolicyDocument[], context: PolicyContext): CompiledPolicy {
  const unresolved: UnresolvedResource[] = [];
  const compiled = new Compiled(unresolved);
  for (const { name, version, document } of documents) {
    document.statements.forEach((s, index) => {
      const templates = templatesOf(s);
      s.resources.forEach((resource, r) => {
        const levels = resolveTemplate(templates[r] as ResourceTemplate, context);
        // Plain literals, not spreads: V8's object spread is ~2 µs here, and this runs per CONNECT.
        if (isUnresolved(levels)) {
          const u: UnresolvedResource = { policy: name, version, statement: index, sid: s.sid, resource, variable: levels.variable, problem: levels.problem };
          if (s.sid === undefined) delete (u as { sid?: string }).sid;
          unresolved.push(Object.freeze(u));
          return;
        }
        const ref: StatementRef = { policy: name, version, statement: index, sid: s.sid, effect: s.effect, resource, resolved: formatLevels(levels) };
        if (s.sid === undefined) delete (ref as { sid?: string }).sid;
        Object.freeze(ref);
        for (const action of s.actions) {
          const t = compiled.table(action);
          (s.effect === 'Deny' ? t.deny : t.allow).add(levels, ref);
        }
      });
    });
  }
  return compiled;
}
