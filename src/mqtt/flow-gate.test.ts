import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FlowGate, type GateWaiter } from './flow-gate.js';

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A waiter that logs which gates opened for it. */
function waiter(log: string[], name: string, gates: Map<FlowGate, string> = new Map()): GateWaiter {
  return { gateOpened: (gate) => void log.push(gates.has(gate) ? `${name}:${gates.get(gate)}` : name) };
}

describe('FlowGate', () => {
  test('holds its waiters until it opens, then tells each once, in order, on a later turn', async () => {
    const gate = new FlowGate();
    const log: string[] = [];
    const [first, second] = [waiter(log, 'first'), waiter(log, 'second')];
    assert.equal(gate.hold(first), true);
    assert.equal(gate.hold(second), true);
    assert.equal(gate.hold(first), false, 'already waiting');
    assert.equal(gate.waiting, 2);
    assert.equal(gate.isOpen, false);
    gate.open();
    assert.equal(gate.isOpen, true);
    assert.deepEqual(log, [], 'never told inside open()');
    await turn();
    assert.deepEqual(log, ['first', 'second']);
    gate.open();
    await turn();
    assert.deepEqual(log, ['first', 'second'], 'a gate opens once');
  });

  test('an opened gate holds no one: a later congestion needs a new gate', async () => {
    const gate = new FlowGate();
    gate.open();
    const log: string[] = [];
    assert.equal(gate.hold(waiter(log, 'late')), false);
    assert.equal(gate.waiting, 0);
    await turn();
    assert.deepEqual(log, []);
  });

  test('a waiter that went away is forgotten and not told', async () => {
    const gate = new FlowGate();
    const log: string[] = [];
    const [gone, stays] = [waiter(log, 'gone'), waiter(log, 'stays')];
    gate.hold(gone);
    gate.hold(stays);
    gate.forget(gone);
    assert.equal(gate.waiting, 1);
    gate.open();
    await turn();
    assert.deepEqual(log, ['stays']);
  });

  test('each gate tells its own waiters which gate opened', async () => {
    const [a, b] = [new FlowGate(), new FlowGate()];
    const log: string[] = [];
    const w = waiter(
      log,
      'w',
      new Map([
        [a, 'a'],
        [b, 'b'],
      ]),
    );
    a.hold(w);
    b.hold(w);
    b.open();
    await turn();
    assert.deepEqual(log, ['w:b']);
    assert.equal(a.isOpen, false, 'the other gate still holds');
    a.open();
    await turn();
    assert.deepEqual(log, ['w:b', 'w:a']);
  });
});
