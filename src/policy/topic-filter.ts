/**
 * MQTT topic-filter algebra for policy resources (MQTT 3.1.1 §4.7): validation, matching a topic
 * name, whether two filters share a topic (intersection) and whether one filter's topics all lie
 * inside another's (coverage).
 *
 * A filter is held as a list of levels where the wildcards are symbols, not the strings '+' and
 * '#': a level that came from a substituted variable is always a literal, so a value '+' can never
 * turn into a wildcard (variables.ts refuses such values too; this is the second wall).
 * Semantics: `+` is exactly one level (possibly empty); `#` is the rest including none, so `a/#`
 * also matches `a`; a topic whose first level starts with `$` is never matched by a wildcard in
 * the first level.
 */

export const PLUS: unique symbol = Symbol('+');
export const HASH: unique symbol = Symbol('#');
export type Level = string | typeof PLUS | typeof HASH;
export type Levels = readonly Level[];

/** MQTT's limit on a topic name or filter (a UTF-8 string with a 16-bit length). */
export const MAX_TOPIC_BYTES = 65_535;

const DOLLAR = 36; // '$'

/** Characters no topic name, device id or `$share` group may hold. */
// eslint-disable-next-line no-control-regex -- NUL is exactly what must be refused
export const INVALID_NAME = /[+#\u0000]/;
const SHARE_PREFIX = '$share/';

/** Why `filter` is not a valid MQTT topic filter, or undefined when it is. */
export function filterProblem(filter: string): string | undefined {
  if (filter.length === 0) return 'is empty';
  if (filter.includes('\u0000')) return 'contains NUL';
  if (Buffer.byteLength(filter, 'utf8') > MAX_TOPIC_BYTES) return `exceeds ${MAX_TOPIC_BYTES} bytes`;
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i] as string;
    if (level === '#') {
      if (i !== levels.length - 1) return "has '#' before the last level";
    } else if (level !== '+' && (level.includes('+') || level.includes('#'))) {
      return "has '+' or '#' inside a level (a wildcard must be a whole level)";
    }
  }
  return undefined;
}

/** Why `topic` is not a valid MQTT topic name (no wildcards), or undefined when it is. */
export function topicNameProblem(topic: string): string | undefined {
  if (topic.length === 0) return 'is empty';
  if (topic.includes('+') || topic.includes('#')) return "contains '+' or '#' (a topic name has no wildcards)";
  if (topic.includes('\u0000')) return 'contains NUL';
  if (Buffer.byteLength(topic, 'utf8') > MAX_TOPIC_BYTES) return `exceeds ${MAX_TOPIC_BYTES} bytes`;
  return undefined;
}

/** The levels of a filter already checked by filterProblem. */
export function filterLevels(filter: string): Level[] {
  return filter.split('/').map((l) => (l === '+' ? PLUS : l === '#' ? HASH : l));
}

export const hasWildcard = (levels: Levels): boolean => levels.some((l) => typeof l !== 'string');

/** Renders levels back as a filter (for messages; a literal level is shown as it is). */
export const formatLevels = (levels: Levels): string =>
  levels.map((l) => (l === PLUS ? '+' : l === HASH ? '#' : l)).join('/');

/**
 * Whether the topic name matches the filter. Walks the topic in place (no split): this runs on
 * every delivery. The topic must be a valid topic name.
 */
export function matchesTopic(levels: Levels, topic: string): boolean {
  const n = topic.length;
  let pos = 0;
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i];
    if (level === HASH) return i !== 0 || topic.charCodeAt(0) !== DOLLAR;
    if (pos > n) return false; // the topic has fewer levels
    let end = topic.indexOf('/', pos);
    if (end === -1) end = n;
    if (level === PLUS) {
      if (i === 0 && topic.charCodeAt(0) === DOLLAR) return false;
    } else if (end - pos !== (level as string).length || !topic.startsWith(level as string, pos)) {
      return false;
    }
    pos = end + 1;
  }
  return pos === n + 1;
}

const startsWithDollar = (level: Level): boolean => typeof level === 'string' && level.charCodeAt(0) === DOLLAR;

/** Whether some topic name matches both filters. */
export function intersects(a: Levels, b: Levels): boolean {
  for (let i = 0; ; i++) {
    const x = a[i];
    const y = b[i];
    if (x === HASH || y === HASH) {
      // `#` takes any rest, including none; only the `$` rule can still separate them.
      if (i === 0) return !(startsWithDollar(x as Level) || startsWithDollar(y as Level));
      return true;
    }
    if (x === undefined || y === undefined) return x === y;
    if (x === PLUS || y === PLUS) {
      if (i === 0 && (startsWithDollar(x) || startsWithDollar(y))) return false;
      continue;
    }
    if (x !== y) return false;
  }
}

/** Whether every topic name matching `inner` also matches `outer`. */
export function covers(outer: Levels, inner: Levels): boolean {
  for (let i = 0; ; i++) {
    const o = outer[i];
    const f = inner[i];
    if (o === HASH) return !(i === 0 && f !== undefined && startsWithDollar(f));
    if (f === undefined) return o === undefined;
    // A topic has at least one level, so a root `#` is also exactly `+/#`.
    if (f === HASH) return i === 0 && o === PLUS && outer[1] === HASH && outer.length === 2;
    if (o === undefined) return false;
    if (f === PLUS) {
      if (o !== PLUS) return false;
      continue;
    }
    if (o === PLUS) {
      if (i === 0 && startsWithDollar(f)) return false;
      continue;
    }
    if (o !== f) return false;
  }
}

/** The filter a SUBSCRIBE asks for, with `$share/{group}/` removed, or undefined when invalid. */
export function subscriptionFilter(filter: string): string | undefined {
  let f = filter;
  if (f.startsWith(SHARE_PREFIX)) {
    const slash = f.indexOf('/', SHARE_PREFIX.length);
    const group = f.slice(SHARE_PREFIX.length, slash);
    if (slash === -1 || group === '' || INVALID_NAME.test(group)) return undefined;
    f = f.slice(slash + 1);
  }
  return filterProblem(f) === undefined ? f : undefined;
}
