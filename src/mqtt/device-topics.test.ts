import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { commandSubfolderProblem, DeviceTopics } from './device-topics.js';

describe('DeviceTopics', () => {
  const topics = new DeviceTopics('dev-1');

  test('a device publishes its own events (with any subfolder depth) and state', () => {
    assert.deepEqual(topics.classifyPublish('/devices/dev-1/events'), { kind: 'events', suffix: '' });
    assert.deepEqual(topics.classifyPublish('/devices/dev-1/events/alerts'), { kind: 'events', suffix: '/alerts' });
    assert.deepEqual(topics.classifyPublish('/devices/dev-1/events/a/b/c'), { kind: 'events', suffix: '/a/b/c' });
    assert.deepEqual(topics.classifyPublish('/devices/dev-1/state'), { kind: 'state' });
  });

  test("another device's topics, look-alikes and other namespaces are forbidden", () => {
    for (const topic of [
      '/devices/dev-2/events',
      '/devices/dev-10/events',
      '/devices/dev-1/eventsx',
      '/devices/dev-1/state/sub',
      '/devices/dev-1/config',
      '/devices/dev-1/commands',
      'devices/dev-1/events',
      '/devices/DEV-1/events',
      '/devices/dev-1',
      'registries/r/devices/dev-1/events',
      '',
      '#',
    ]) {
      assert.deepEqual(topics.classifyPublish(topic), { kind: 'forbidden' }, topic);
    }
  });

  test('a subfolder with wildcards or NUL, or an empty one, is invalid', () => {
    for (const topic of ['/devices/dev-1/events/', '/devices/dev-1/events/a/+', '/devices/dev-1/events/#', '/devices/dev-1/events/a\u0000b']) {
      assert.equal(topics.classifyPublish(topic).kind, 'invalid', topic);
    }
  });

  test('a device subscribes to its config, commands/# and errors only', () => {
    assert.equal(topics.classifySubscription('/devices/dev-1/config'), 'config');
    assert.equal(topics.classifySubscription('/devices/dev-1/commands/#'), 'commands');
    assert.equal(topics.classifySubscription('/devices/dev-1/errors'), 'errors');
    for (const filter of ['#', '/devices/dev-2/errors', '/devices/dev-1/errors/#', '/devices/+/config', '/devices/dev-1/#', '/devices/dev-1/commands', '/devices/dev-1/commands/x', '/devices/dev-2/config', '$SYS/#']) {
      assert.equal(topics.classifySubscription(filter), undefined, filter);
    }
  });

  test('ids containing MQTT-significant characters are compared literally', () => {
    const plus = new DeviceTopics('a+b');
    assert.equal(plus.classifyPublish('/devices/a+b/state').kind, 'state');
    assert.equal(plus.classifyPublish('/devices/axb/state').kind, 'forbidden');
    assert.equal(plus.classifySubscription('/devices/+/config'), undefined);
  });

  test('command topics and subfolder rules', () => {
    assert.equal(topics.commandTopic(undefined), '/devices/dev-1/commands');
    assert.equal(topics.commandTopic('power/now'), '/devices/dev-1/commands/power/now');
    assert.equal(commandSubfolderProblem('ok/fine'), undefined);
    assert.ok(commandSubfolderProblem('x'.repeat(257)));
    assert.ok(commandSubfolderProblem('a/#'));
    assert.ok(commandSubfolderProblem(''));
  });
});
