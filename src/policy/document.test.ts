import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeywayError } from '../domain/errors.js';
import { parsePolicyDocument, POLICY_LIMITS, tryParsePolicyDocument } from './document.js';

const doc = (statements: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  version: '2026-01-01',
  statements,
  ...extra,
});
const allow = (actions: unknown, resources: unknown, more: Record<string, unknown> = {}): Record<string, unknown> => ({
  effect: 'Allow',
  actions,
  resources,
  ...more,
});

/** Asserts the input is refused with INVALID_ARGUMENT naming `field`, with `text` in the description. */
function refused(input: unknown, field: string, text: string | RegExp): void {
  const result = tryParsePolicyDocument(input);
  assert.ok(result instanceof KeywayError, `expected a refusal at ${field}`);
  assert.equal(result.status, 'INVALID_ARGUMENT');
  assert.equal(result.fieldViolations[0]?.field, field);
  const description = result.fieldViolations[0]?.description ?? '';
  if (typeof text === 'string') assert.ok(description.includes(text), `${field}: '${description}' lacks '${text}'`);
  else assert.match(description, text);
}

describe('policy documents', () => {
  it('parses a valid document from an object or from JSON text, keeping only known fields, frozen', () => {
    const input = doc([
      allow(['publish'], ['building/${device.metadata.building}/temp/${device.id}'], { sid: 'telemetry' }),
      { effect: 'Deny', actions: ['retain', 'publish'], resources: ['#'] },
      allow(['connect'], ['${device.id}', '+']),
    ]);
    const parsed = parsePolicyDocument(input);
    assert.deepEqual(parsePolicyDocument(JSON.stringify(input, null, 2)), parsed);
    assert.equal(parsed.statements.length, 3);
    assert.equal(parsed.statements[0]?.sid, 'telemetry');
    assert.equal('sid' in (parsed.statements[1] ?? {}), false);
    assert.ok(Object.isFrozen(parsed) && Object.isFrozen(parsed.statements[0]?.resources));
  });

  it('refuses malformed documents with a field violation naming the field', () => {
    refused('{not json', 'policy', 'is not valid JSON');
    refused([], 'policy', 'must be a JSON object');
    refused(null, 'policy', 'must be a JSON object');
    refused(doc([allow(['publish'], ['a'])], { extra: 1 }), 'policy.extra', 'unknown field');
    refused({ Version: '2012-10-17', Statement: [] }, 'policy.Version', "did you mean 'version'?");
    refused({ version: '2026-01-01', statement: [] }, 'policy.statement', "did you mean 'statements'?");
    refused(doc([allow(['publish'], ['a'])], { version: '2012-10-17' }), 'policy.version', "must be '2026-01-01'");
    refused({ statements: [allow(['publish'], ['a'])] }, 'policy.version', "must be '2026-01-01'");
    refused(doc([]), 'policy.statements', 'must not be empty');
    refused(doc('x' as unknown as unknown[]), 'policy.statements', 'must be a list');
    refused(doc([42]), 'policy.statements[0]', 'must be an object');
    refused(doc([{ ...allow(['publish'], ['a']), Effect: 'Allow' }]), 'policy.statements[0].Effect', "did you mean 'effect'?");
    refused(doc([{ actions: ['publish'], resources: ['a'] }]), 'policy.statements[0].effect', 'is required');
    refused(doc([{ ...allow(['publish'], ['a']), effect: 'allow' }]), 'policy.statements[0].effect', "must be 'Allow' or 'Deny'");
    refused(doc([allow([], ['a'])]), 'policy.statements[0].actions', 'must not be empty');
    refused(doc([allow('publish', ['a'])]), 'policy.statements[0].actions', 'must be a list');
    refused(doc([allow(['publish', 'iot:Publish'], ['a'])]), 'policy.statements[0].actions[1]', 'must be one of');
    refused(doc([allow(['*'], ['a'])]), 'policy.statements[0].actions[0]', 'must be one of');
    refused(doc([allow(['publish', 'publish'], ['a'])]), 'policy.statements[0].actions', 'twice');
    refused(doc([allow(['publish'], [])]), 'policy.statements[0].resources', 'must not be empty');
    refused(doc([allow(['publish'], ['a', 'a'])]), 'policy.statements[0].resources', 'twice');
    refused(doc([allow(['publish'], [7])]), 'policy.statements[0].resources[0]', 'must be a string');
    refused(doc([allow(['publish'], ['a', 'b', ''])]), 'policy.statements[0].resources[2]', 'must not be empty');
    refused(doc([allow(['publish'], ['a', 'b'], { sid: 'bad sid' })]), 'policy.statements[0].sid', 'must match');
    refused(doc([allow(['publish'], ['a'], { sid: 's' }), allow(['receive'], ['b'], { sid: 's' })]), 'policy.statements[1].sid', 'earlier statement');
  });

  it('refuses resources that break the MQTT topic rules', () => {
    const at = 'policy.statements[0].resources[0]';
    refused(doc([allow(['subscribe'], ['a/#/b'])]), at, "'#' must be the last level");
    refused(doc([allow(['subscribe'], ['#/a'])]), at, "'#' must be the last level");
    refused(doc([allow(['subscribe'], ['a/b#'])]), at, 'whole levels');
    refused(doc([allow(['subscribe'], ['a/+b'])]), at, 'whole levels');
    refused(doc([allow(['subscribe'], ['a/x+${device.id}'])]), at, 'whole levels');
    refused(doc([allow(['subscribe'], ['a/\u0000'])]), at, 'NUL');
    refused(doc([allow(['connect'], ['a/b'])]), at, 'connect resource is a device id');
    refused(doc([allow(['connect', 'publish'], ['/devices/${device.id}/events'])]), at, 'connect resource is a device id');
  });

  it('refuses unknown and malformed variables', () => {
    const at = 'policy.statements[0].resources[0]';
    refused(doc([allow(['publish'], ['t/${iot:ClientId}'])]), at, 'unknown variable');
    refused(doc([allow(['publish'], ['t/${device.name}'])]), at, 'unknown variable');
    refused(doc([allow(['publish'], ['t/${device.metadata.}'])]), at, 'not a valid metadata key');
    refused(doc([allow(['publish'], ['t/${device.metadata.9lives}'])]), at, 'not a valid metadata key');
    refused(doc([allow(['publish'], ['t/${cert.subject.CommonName}'])]), at, 'certificate subject field');
    refused(doc([allow(['publish'], ['t/${device.id'])]), at, "without a closing '}'");
    refused(doc([allow(['publish'], ['t/${device.metadata.a/b}'])]), at, "without a closing '}'");
    // Known variables, several per level, and a literal '$' pass.
    parsePolicyDocument(doc([allow(['publish'], ['$app/${registry.id}-${device.numId}/${cert.subject.OU}/${device.metadata.x.y-z}'])]));
  });

  it('enforces the size limits', () => {
    const many = Array.from({ length: POLICY_LIMITS.statements + 1 }, (_, i) => allow(['publish'], [`t/${i}`]));
    refused(doc(many), 'policy.statements', 'at most 100');
    parsePolicyDocument(doc(many.slice(0, POLICY_LIMITS.statements)));
    const resources = Array.from({ length: POLICY_LIMITS.resourcesPerStatement + 1 }, (_, i) => `t/${i}`);
    refused(doc([allow(['publish'], resources)]), 'policy.statements[0].resources', 'at most 50');
    refused(doc([allow(['publish'], ['x'.repeat(POLICY_LIMITS.documentBytes)])]), 'policy', 'as compact JSON');
    // Whitespace does not count against the document limit, but the raw text is bounded too.
    const padded = JSON.stringify(doc([allow(['publish'], ['a'])]), null, 2).replace('{', `{${' '.repeat(30_000)}`);
    parsePolicyDocument(padded);
    refused(`${' '.repeat(POLICY_LIMITS.rawTextBytes)}{}`, 'policy', 'bytes of JSON text');
  });

  it('is not fooled by prototype keys in JSON', () => {
    refused('{"version":"2026-01-01","statements":[{"effect":"Allow","actions":["publish"],"resources":["a"],"__proto__":{"x":1}}]}', 'policy.statements[0].__proto__', 'unknown field');
  });
});
