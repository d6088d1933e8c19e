import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { flushSoon } from './flush-scheduler.js';

describe('flushSoon', () => {
  test('flushes every target once, after the current turn, in the order they asked', async () => {
    const log: string[] = [];
    flushSoon({ flushOutbound: () => void log.push('a') });
    flushSoon({ flushOutbound: () => void log.push('b') });
    assert.deepEqual(log, []);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(log, ['a', 'b']);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(log, ['a', 'b'], 'not flushed again');
  });
});
