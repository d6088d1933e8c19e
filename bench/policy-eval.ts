/**
 * Micro-benchmark of the policy engine (no broker): how many decisions per second one core makes
 * for a 10-statement policy plus the built-in Cloud IoT Core document, and what compiling one
 * connection's policy costs.
 *
 *   node --import tsx bench/policy-eval.ts        (POLICY_BENCH_MS=500 per case by default)
 */
import { CLOUD_IOT_CORE_POLICY } from '../src/policy/builtin.js';
import { parsePolicyDocument } from '../src/policy/document.js';
import { compilePolicies, type NamedPolicyDocument } from '../src/policy/evaluate.js';
import type { PolicyContext } from '../src/policy/variables.js';

const MS = Number(process.env.POLICY_BENCH_MS ?? 500);
const FLOOR = 'building/${device.metadata.building}/floor/${device.metadata.floor}';

const TEN: NamedPolicyDocument = {
  name: 'bench',
  version: 1,
  document: parsePolicyDocument({
    version: '2026-01-01',
    statements: [
      { effect: 'Allow', actions: ['publish'], resources: [`${FLOOR}/temp/\${device.id}`] },
      { effect: 'Allow', actions: ['publish'], resources: [`${FLOOR}/hvac/\${device.id}/status`] },
      { effect: 'Allow', actions: ['subscribe', 'receive'], resources: [`${FLOOR}/hvac/\${device.id}/cmd`] },
      { effect: 'Allow', actions: ['subscribe', 'receive'], resources: [`${FLOOR}/temp/+`] },
      { effect: 'Allow', actions: ['subscribe', 'receive'], resources: ['building/${device.metadata.building}/announcements/#'] },
      { effect: 'Allow', actions: ['receive'], resources: ['fleet/${registry.id}/broadcast'] },
      { effect: 'Deny', actions: ['publish'], resources: ['building/+/floor/+/lock/+/cmd'] },
      { effect: 'Deny', actions: ['subscribe', 'receive'], resources: ['building/+/announcements/internal/#'] },
      { effect: 'Deny', actions: ['retain'], resources: ['#'] },
      { effect: 'Allow', actions: ['publish'], resources: ['/devices/${device.id}/events/diagnostics/+'] },
    ],
  }),
};
const CTX: PolicyContext = {
  registryId: 'tower-a',
  deviceId: 'hvac-3-01',
  deviceNumId: '1001',
  metadata: { building: 'hq', floor: '3' },
};

function measure(label: string, fn: (i: number) => unknown): void {
  for (let i = 0; i < 50_000; i++) fn(i); // warm up the JIT
  let n = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(MS) * 1_000_000n;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 10_000; i++) fn(n + i);
    n += 10_000;
    now = process.hrtime.bigint();
  }
  const seconds = Number(now - start) / 1e9;
  const rate = n / seconds;
  console.log(`${label.padEnd(58)} ${(rate / 1e6).toFixed(2).padStart(7)} M/s  ${(1e9 / rate).toFixed(0).padStart(5)} ns/op`);
}

const policy = compilePolicies([CLOUD_IOT_CORE_POLICY, TEN], CTX);
let sink = 0;
const check = (ok: boolean, what: string): void => {
  if (!ok) throw new Error(`bench setup: ${what}`);
};
check(policy.can('receive', 'building/hq/floor/3/hvac/hvac-3-01/cmd'), 'literal receive');
check(policy.can('receive', 'building/hq/floor/3/temp/temp-3-17'), 'wildcard receive');
check(!policy.can('receive', 'building/hq/floor/4/temp/temp-4-01'), 'miss');

const temps = Array.from({ length: 64 }, (_, i) => `building/hq/floor/3/temp/temp-3-${i}`);
measure('receive, literal resource (hash lookup)', () => (sink += +policy.can('receive', 'building/hq/floor/3/hvac/hvac-3-01/cmd')));
measure('receive, wildcard resource (floor/3/temp/+)', (i) => (sink += +policy.can('receive', temps[i & 63] as string)));
measure('receive, implicit deny (walks every resource)', () => (sink += +policy.can('receive', 'building/hq/floor/4/temp/temp-4-01')));
measure('publish, built-in /devices/{id}/events/#', () => (sink += +policy.can('publish', '/devices/hvac-3-01/events/a/b')));
measure('subscribe, building/hq/floor/3/temp/+', () => (sink += +policy.canSubscribe('building/hq/floor/3/temp/+')));
measure('compile one connection (built-in + 10 statements)', () => (sink += compilePolicies([CLOUD_IOT_CORE_POLICY, TEN], CTX).unresolved.length));
if (sink < 0) console.log(sink);
