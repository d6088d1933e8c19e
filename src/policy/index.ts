/** The policy engine's public surface (pure: no store, no broker). See document.ts for the language. */
export {
  parsePolicyDocument, tryParsePolicyDocument, POLICY_ACTIONS, POLICY_EFFECTS, POLICY_LANGUAGE_VERSION, POLICY_LIMITS,
  type PolicyAction, type PolicyDocument, type PolicyEffect, type PolicyStatement, type TopicAction,
} from './document.js';
export {
  compilePolicies, type CompiledPolicy, type NamedPolicyDocument, type PolicyDecision, type StatementRef, type UnresolvedResource,
} from './evaluate.js';
export { compilePolicyTemplate, type PolicyTemplate } from './template.js';
export { CLOUD_IOT_CORE_POLICY, CLOUD_IOT_CORE_POLICY_NAME } from './builtin.js';
export { hasLintErrors, lintPolicyDocument, LINT_CODES, type LintCode, type LintSeverity, type PolicyLintFinding } from './lint.js';
export {
  certSubjectFromFields, CERT_SUBJECT_FIELDS, MAX_VARIABLE_VALUE_BYTES, type CertSubjectField, type PolicyContext,
} from './variables.js';
export { filterProblem, topicNameProblem } from './topic-filter.js';
