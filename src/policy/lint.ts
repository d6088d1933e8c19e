/**
 * Lint for over-permissive policy documents (the write-time counterpart of AWS IoT Device
 * Defender's policy checks). Only Allow statements are judged: a Deny cannot over-grant, and in
 * our engine a wildcard in a Deny works as written (subscribe checks intersection), so AWS's
 * "wildcard in deny" warning does not apply.
 *
 * Codes (severity):
 * - ALLOW_ALL_ACTIONS_ON_ALL_TOPICS (error): publish, subscribe and receive on `#`-like resources.
 * - ROOT_WILDCARD (error): `#` at the root, or after only `+`/empty levels (`+/#`, `/#`).
 * - PUBLISH_OTHER_DEVICE (error): publish/retain reaching another device's Cloud IoT Core topics
 *   (`/devices/+/…`, `/devices/sensor-2/…`).
 * - SPANS_DEVICES (error): a wildcard where a device id goes: in `/devices/{id}/…`, or right after
 *   a level named devices/device/things/thing/clients in custom topics.
 * - WILDCARD_PUBLISH (error): publish/retain on a wildcard resource without a per-device variable
 *   (`${device.id}`, `${device.numId}`, `${cert.subject.CN}`): any device holding the policy can
 *   publish as any other.
 * - OTHER_DEVICE_TOPICS (warning): subscribe/receive on a fixed other device's `/devices/{id}/…`.
 * - NO_DEVICE_VARIABLE (warning): publish/retain on a fixed topic without a per-device variable,
 *   or subscribe/receive on a wildcard resource without any variable: one device is usually
 *   meant, but every device the policy is attached to gets it.
 */
import type { PolicyAction, PolicyDocument } from './document.js';
import { parseResourceTemplate, type TemplateLevel } from './resource.js';
import { HASH, intersects, PLUS, type Level } from './topic-filter.js';
import { isPerDeviceVariable } from './variables.js';

export type LintSeverity = 'error' | 'warning';
export const LINT_CODES = {
  ALLOW_ALL_ACTIONS_ON_ALL_TOPICS: 'error',
  ROOT_WILDCARD: 'error',
  PUBLISH_OTHER_DEVICE: 'error',
  SPANS_DEVICES: 'error',
  WILDCARD_PUBLISH: 'error',
  OTHER_DEVICE_TOPICS: 'warning',
  NO_DEVICE_VARIABLE: 'warning',
} as const satisfies Record<string, LintSeverity>;
export type LintCode = keyof typeof LINT_CODES;

export interface PolicyLintFinding {
  readonly code: LintCode;
  readonly severity: LintSeverity;
  /** Index in the document's `statements`. */
  readonly statement: number;
  readonly sid?: string;
  /** The resource as written. */
  readonly resource: string;
  readonly message: string;
}

const DEVICE_COLLECTIONS = new Set(['devices', 'device', 'things', 'thing', 'clients']);
const DEVICES_SPACE: readonly Level[] = ['', 'devices', PLUS, HASH];

/** A resource seen with its variables as opaque literals (NUL cannot occur in a real level). */
interface Shape {
  readonly levels: Level[];
  readonly perDevice: boolean[];
  readonly anyVariable: boolean;
}

function shapeOf(template: readonly TemplateLevel[]): Shape {
  const levels: Level[] = [];
  const perDevice: boolean[] = [];
  let anyVariable = false;
  for (const level of template) {
    if (level === PLUS || level === HASH) {
      levels.push(level);
      perDevice.push(false);
      continue;
    }
    const vars = level.flatMap((p) => ('variable' in p ? [p.variable] : []));
    anyVariable ||= vars.length > 0;
    perDevice.push(vars.some(isPerDeviceVariable));
    const text = level.map((p) => ('text' in p ? p.text : `\${${p.variable}}`)).join('');
    // A level with a variable becomes an opaque literal: equal only to the same template text.
    levels.push(vars.length ? `\u0000${text}` : text);
  }
  return { levels, perDevice, anyVariable };
}

const isRootWildcard = (levels: readonly Level[]): boolean =>
  levels[levels.length - 1] === HASH && levels.slice(0, -1).every((l) => l === PLUS || l === '');

/**
 * How the resource reaches `/devices/{id}/…` of a device other than its own: 'wildcard', 'literal'
 * (a fixed id), or undefined when it does not (own id by variable, or outside that space).
 */
function otherDeviceReach(s: Shape): 'wildcard' | 'literal' | undefined {
  if (!intersects(s.levels, DEVICES_SPACE)) return undefined;
  // Up to the device level any wildcard reaches every device; HASH before it covers it too.
  for (let i = 0; i <= 2; i++) {
    const l = s.levels[i];
    if (l === HASH) return 'wildcard';
    if (i === 2) {
      if (l === PLUS) return 'wildcard';
      return s.perDevice[2] ? undefined : 'literal';
    }
  }
  return undefined;
}

function spansCustomCollection(levels: readonly Level[]): boolean {
  for (let i = 0; i + 1 < levels.length; i++) {
    const l = levels[i];
    const next = levels[i + 1];
    if (typeof l === 'string' && DEVICE_COLLECTIONS.has(l.toLowerCase()) && (next === PLUS || next === HASH)) return true;
  }
  return false;
}

const TOPIC_ACTIONS: readonly PolicyAction[] = ['publish', 'subscribe', 'receive', 'retain'];

export function lintPolicyDocument(document: PolicyDocument): PolicyLintFinding[] {
  const findings: PolicyLintFinding[] = [];
  document.statements.forEach((st, index) => {
    if (st.effect !== 'Allow') return;
    const publishes = st.actions.includes('publish') || st.actions.includes('retain');
    const reads = st.actions.includes('subscribe') || st.actions.includes('receive');
    if (!st.actions.some((a) => TOPIC_ACTIONS.includes(a))) return; // connect-only
    const everything = ['publish', 'subscribe', 'receive'].every((a) => st.actions.includes(a as PolicyAction));
    for (const resource of st.resources) {
      const add = (code: LintCode, message: string): void => {
        findings.push({
          code,
          severity: LINT_CODES[code],
          statement: index,
          ...(st.sid !== undefined ? { sid: st.sid } : {}),
          resource,
          message,
        });
      };
      const s = shapeOf(parseResourceTemplate(resource, 'resource', st.actions.includes('connect')));
      const wildcard = s.levels.some((l) => l === PLUS || l === HASH);
      const perDevice = s.perDevice.some(Boolean);
      if (isRootWildcard(s.levels)) {
        if (everything) add('ALLOW_ALL_ACTIONS_ON_ALL_TOPICS', `allows ${st.actions.join(', ')} on every topic ('${resource}')`);
        else add('ROOT_WILDCARD', `'${resource}' covers every topic of the registry, including every device's own topics`);
        continue;
      }
      const reach = otherDeviceReach(s);
      if (reach && publishes)
        add(
          'PUBLISH_OTHER_DEVICE',
          reach === 'wildcard'
            ? `'${resource}' lets a device publish on every device's Cloud IoT Core topics; use /devices/\${device.id}/…`
            : `'${resource}' names a fixed device: every other device holding this policy may publish on its topics`,
        );
      if (reach === 'wildcard' && reads)
        add('SPANS_DEVICES', `'${resource}' lets a device read every device's Cloud IoT Core topics; use /devices/\${device.id}/…`);
      if (reach === 'literal' && reads)
        add('OTHER_DEVICE_TOPICS', `'${resource}' names a fixed device: every device holding this policy reads its topics`);
      if (reach) continue;
      if (spansCustomCollection(s.levels) && !perDevice)
        add('SPANS_DEVICES', `'${resource}' has a wildcard where a device id goes; put \${device.id} there`);
      else if (publishes && wildcard && !perDevice)
        add('WILDCARD_PUBLISH', `publish on '${resource}' without \${device.id}: one compromised device may publish as any other`);
      else if (publishes && !perDevice)
        add('NO_DEVICE_VARIABLE', `publish on '${resource}' has no per-device variable: every device holding this policy may publish there`);
      if (reads && wildcard && !s.anyVariable && !spansCustomCollection(s.levels))
        add('NO_DEVICE_VARIABLE', `'${resource}' is a wildcard with no variable: every device holding this policy reads all of it`);
    }
  });
  return findings;
}

export const hasLintErrors = (findings: readonly PolicyLintFinding[]): boolean => findings.some((f) => f.severity === 'error');
