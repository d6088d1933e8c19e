import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FlowGate, type GateWaiter } from './flow-gate.js';

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function waiter(log: string[], name: string): GateWaiter {
  return { gateOpened: () => void log.push(name) };
}

describe('FlowGate', () => {
  test('stays closed until every holder lets go, then wakes waiters in order on a later turn', async () => {
    const gate = new FlowGate();
    const [a, b] = [{}, {}];
    const log: string[] = [];
    gate.hold(a);
    gate.hold(b);
    assert.equal(gate.open, false);
    gate.wait(waiter(log, 'first'));
    gate.wait(waiter(log, 'second'));
    gate.release(a);
    await turn();
    assert.deepEqual(log, [], 'one holder still holds it');
    gate.release(b);
    assert.equal(gate.open, true);
    assert.deepEqual(log, [], 'never woken inside release');
    await turn();
    assert.deepEqual(log, ['first', 'second']);
  });

  test('a waiter that finds the gate closed again is not woken until it opens once more', async () => {
    const gate = new FlowGate();
    const holder = {};
    const log: string[] = [];
    gate.hold(holder);
    gate.wait(waiter(log, 'w'));
    gate.release(holder);
    gate.hold(holder);
    await turn();
    assert.deepEqual(log, []);
    gate.release(holder);
    await turn();
    assert.deepEqual(log, ['w']);
  });

  test('releasing something that never held it changes nothing', async () => {
    const gate = new FlowGate();
    gate.hold({});
    gate.release({});
    assert.equal(gate.open, false);
  });
});
