/**
 * Connection policies that share their compiled form. `compilePolicyTemplate` compiles a set of
 * documents once; `bind` gives one connection a CompiledPolicy that holds only its variable
 * values (a device id, …) and matches against the shared templates in place. Every connection of
 * a registry without stored policies shares one template (the built-in grants), so a connection's
 * policy costs a few dozen bytes instead of its own tables.
 *
 * Answers are exactly compilePolicies' (evaluate.ts; template.test.ts checks them against each
 * other): `can` and `canSubscribe` here, and `decide`/`unresolved` by compiling that connection
 * in full on first use (the dry run; never on the broker's hot path).
 */
import { compilePolicies, templatesOf, type CompiledPolicy, type NamedPolicyDocument, type PolicyDecision, type UnresolvedResource } from './evaluate.js';
import type { PolicyAction, TopicAction } from './document.js';
import {
  covers, filterLevels, HASH, hasWildcard, INVALID_NAME, intersects, matchesTopic, PLUS, subscriptionFilter, type Level, type Levels,
} from './topic-filter.js';
import { unsafeValueProblem, variableValue, type PolicyContext } from './variables.js';

/** Literal text, or the index of a variable in the template's `variables`. */
type Part = string | number;
type Compiled = typeof PLUS | typeof HASH | readonly Part[];

interface Entry {
  /** Set when the resource has no variable: the same levels for every connection. */
  readonly fixed?: Levels;
  readonly levels: readonly Compiled[];
}

/** Per effect: variable-free literals in a set, every other resource as a list. */
interface EffectEntries {
  readonly exact: Set<string>;
  readonly others: Entry[];
  /** Every entry (subscribe needs the filter algebra on all of them). */
  readonly all: Entry[];
}

interface ActionEntries {
  readonly allow: EffectEntries;
  readonly deny: EffectEntries;
}

const DOLLAR = 36;

export interface PolicyTemplate {
  /** Whether any resource reads `${cert.subject.*}` (else the certificate subject is not needed). */
  readonly usesCertSubject: boolean;
  /** One connection's policy. */
  bind(context: PolicyContext): CompiledPolicy;
}

export function compilePolicyTemplate(documents: readonly NamedPolicyDocument[]): PolicyTemplate {
  return new Template(documents);
}

class Template implements PolicyTemplate {
  readonly variables: string[] = [];
  readonly tables = new Map<PolicyAction, ActionEntries>();
  readonly usesCertSubject: boolean;

  constructor(readonly documents: readonly NamedPolicyDocument[]) {
    const index = new Map<string, number>();
    for (const { document } of documents) {
      for (const s of document.statements) {
        const templates = templatesOf(s);
        for (const template of templates) {
          let hasVariable = false;
          const levels = template.map((level): Compiled => {
            if (level === PLUS || level === HASH) return level;
            return level.map((p) => {
              if ('text' in p) return p.text;
              hasVariable = true;
              let i = index.get(p.variable);
              if (i === undefined) index.set(p.variable, (i = this.variables.push(p.variable) - 1));
              return i;
            });
          });
          const fixed = hasVariable ? undefined : levels.map((l): Level => (l === PLUS || l === HASH ? l : (l as string[]).join('')));
          const entry: Entry = fixed ? { fixed, levels } : { levels };
          for (const action of s.actions) {
            let t = this.tables.get(action);
            if (!t) this.tables.set(action, (t = { allow: effectEntries(), deny: effectEntries() }));
            const e = s.effect === 'Deny' ? t.deny : t.allow;
            e.all.push(entry);
            if (fixed && !hasWildcard(fixed)) e.exact.add(fixed.join('/'));
            else e.others.push(entry);
          }
        }
      }
    }
    this.usesCertSubject = this.variables.some((v) => v.startsWith('cert.subject.'));
  }

  bind(context: PolicyContext): CompiledPolicy {
    const values = this.variables.map((v) => {
      const value = variableValue(v, context);
      return unsafeValueProblem(value, false) === undefined ? value : undefined;
    });
    return new Bound(this, values, context);
  }
}

const effectEntries = (): EffectEntries => ({ exact: new Set(), others: [], all: [] });

/**
 * Whether the topic name matches the entry with these values: matchesTopic (topic-filter.ts) on
 * the resolved levels, without building them. A variable without a safe value matches nothing.
 */
function matches(e: Entry, values: readonly (string | undefined)[], topic: string): boolean {
  if (e.fixed) return matchesTopic(e.fixed, topic);
  const levels = e.levels;
  const n = topic.length;
  let pos = 0;
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i] as Compiled;
    if (level === HASH) return i !== 0 || topic.charCodeAt(0) !== DOLLAR;
    if (pos > n) return false;
    let end = topic.indexOf('/', pos);
    if (end === -1) end = n;
    if (level === PLUS) {
      if (i === 0 && topic.charCodeAt(0) === DOLLAR) return false;
    } else {
      let p = pos;
      for (let j = 0; j < level.length; j++) {
        const part = level[j] as Part;
        const s = typeof part === 'string' ? part : values[part];
        if (s === undefined) return false;
        // A value that would start the topic with '$' is unresolved (variables.ts).
        if (i === 0 && j === 0 && typeof part === 'number' && s.charCodeAt(0) === DOLLAR) return false;
        if (!topic.startsWith(s, p)) return false;
        p += s.length;
      }
      if (p !== end) return false;
    }
    pos = end + 1;
  }
  return pos === n + 1;
}

/** The entry's levels with these values, or undefined when a variable has no safe value. */
function resolve(e: Entry, values: readonly (string | undefined)[]): Levels | undefined {
  if (e.fixed) return e.fixed;
  const out: Level[] = [];
  for (let i = 0; i < e.levels.length; i++) {
    const level = e.levels[i] as Compiled;
    if (level === PLUS || level === HASH) {
      out.push(level);
      continue;
    }
    let text = '';
    for (let j = 0; j < level.length; j++) {
      const part = level[j] as Part;
      const s = typeof part === 'string' ? part : values[part];
      if (s === undefined) return undefined;
      if (i === 0 && j === 0 && typeof part === 'number' && s.charCodeAt(0) === DOLLAR) return undefined;
      text += s;
    }
    out.push(text);
  }
  return out;
}

function has(e: EffectEntries, values: readonly (string | undefined)[], name: string): boolean {
  if (e.exact.has(name)) return true;
  const others = e.others;
  for (let i = 0; i < others.length; i++) if (matches(others[i] as Entry, values, name)) return true;
  return false;
}

class Bound implements CompiledPolicy {
  #full: CompiledPolicy | undefined;

  constructor(
    private readonly template: Template,
    private readonly values: readonly (string | undefined)[],
    private readonly context: PolicyContext,
  ) {}

  can(action: 'connect' | TopicAction, name: string): boolean {
    const t = this.template.tables.get(action);
    if (!t || t.allow.all.length === 0) return false;
    if (name.length === 0 || INVALID_NAME.test(name)) return false;
    if (action === 'connect' && name.includes('/')) return false;
    return !has(t.deny, this.values, name) && has(t.allow, this.values, name);
  }

  canSubscribe(filter: string): boolean {
    const t = this.template.tables.get('subscribe');
    if (!t || t.allow.all.length === 0) return false;
    const f = subscriptionFilter(filter);
    if (f === undefined) return false;
    const levels = filterLevels(f);
    for (const e of t.deny.all) {
      const d = resolve(e, this.values);
      if (d && intersects(d, levels)) return false;
    }
    for (const e of t.allow.all) {
      const a = resolve(e, this.values);
      if (a && covers(a, levels)) return true;
    }
    return false;
  }

  decide(action: PolicyAction, resource: string, field?: string): PolicyDecision {
    return this.#compiled().decide(action, resource, field);
  }

  get unresolved(): readonly UnresolvedResource[] {
    return this.#compiled().unresolved;
  }

  #compiled(): CompiledPolicy {
    return (this.#full ??= compilePolicies(this.template.documents, this.context));
  }
}
