/**
 * A policy resource as written: an MQTT topic filter whose levels may hold `${variables}`.
 * Parsing checks it once (document.ts) and yields a template that evaluate.ts resolves per
 * connection into topic-filter levels.
 */
import { fieldError } from '../domain/errors.js';
import { HASH, MAX_TOPIC_BYTES, PLUS, type Level } from './topic-filter.js';
import { parseLevelTemplate, unsafeValueProblem, variableValue, type PolicyContext, type TemplatePart } from './variables.js';

/** One level of a resource: a wildcard, or literal text and variables concatenated. */
export type TemplateLevel = typeof PLUS | typeof HASH | readonly TemplatePart[];
export type ResourceTemplate = readonly TemplateLevel[];

/**
 * Parses and checks one resource. MQTT rules apply to the text around the variables: `+` and `#`
 * are whole levels, `#` only last, no NUL, at most 65535 bytes. `singleLevel`: the resource of a
 * `connect` statement names a device id, so it has no '/'.
 */
export function parseResourceTemplate(resource: unknown, field: string, singleLevel = false): ResourceTemplate {
  if (typeof resource !== 'string') throw fieldError(field, 'must be a string');
  if (resource.length === 0) throw fieldError(field, 'must not be empty');
  if (resource.includes('\u0000')) throw fieldError(field, 'must not contain NUL');
  if (Buffer.byteLength(resource, 'utf8') > MAX_TOPIC_BYTES) throw fieldError(field, `exceeds ${MAX_TOPIC_BYTES} bytes`);
  const raw = resource.split('/');
  if (singleLevel && raw.length > 1)
    throw fieldError(field, "a connect resource is a device id, '+' or '#' (one level, no '/'); put topic actions in another statement");
  return raw.map((level, i): TemplateLevel => {
    if (level === '#') {
      if (i !== raw.length - 1) throw fieldError(field, "'#' must be the last level");
      return HASH;
    }
    if (level === '+') return PLUS;
    const parts = parseLevelTemplate(level, field);
    for (const p of parts)
      if ('text' in p && (p.text.includes('+') || p.text.includes('#')))
        throw fieldError(field, "'+' and '#' must be whole levels");
    return parts;
  });
}

/** Why a template could not be resolved in a context, with the variable at fault. */
export interface Unresolved {
  readonly variable: string;
  readonly problem: string;
}

/**
 * The levels of a template in one context, or the first variable that would not resolve safely
 * (the resource then matches nothing). Substituted text is always a literal level.
 */
export function resolveTemplate(template: ResourceTemplate, ctx: PolicyContext): Level[] | Unresolved {
  const out: Level[] = [];
  for (let i = 0; i < template.length; i++) {
    const level = template[i] as TemplateLevel;
    if (level === PLUS || level === HASH) {
      out.push(level);
      continue;
    }
    let text = '';
    for (let j = 0; j < level.length; j++) {
      const part = level[j] as TemplatePart;
      if ('text' in part) {
        text += part.text;
        continue;
      }
      const value = variableValue(part.variable, ctx);
      const problem = unsafeValueProblem(value, i === 0 && j === 0);
      if (problem) return { variable: part.variable, problem };
      text += value;
    }
    out.push(text);
  }
  return out;
}

export const isUnresolved = (r: Level[] | Unresolved): r is Unresolved => !Array.isArray(r);
