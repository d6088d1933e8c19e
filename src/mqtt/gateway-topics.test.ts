import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { attachedFilterDevice, classifyGatewayPublish } from './gateway-topics.js';

describe('gateway topics', () => {
  test('attach and detach name the device, whoever publishes them (the caller checks for a gateway)', () => {
    for (const isGateway of [true, false]) {
      assert.deepEqual(classifyGatewayPublish('gw', isGateway, '/devices/d-1/attach'), { kind: 'attach', deviceId: 'd-1' });
      assert.deepEqual(classifyGatewayPublish('gw', isGateway, '/devices/d-1/detach'), { kind: 'detach', deviceId: 'd-1' });
      assert.deepEqual(classifyGatewayPublish('gw', isGateway, '/devices/gw/attach'), { kind: 'attach', deviceId: 'gw' });
    }
  });

  test("a gateway's publish on another device's topic is that device's; its own topics and everything else are not the gateway's business", () => {
    assert.deepEqual(classifyGatewayPublish('gw', true, '/devices/d-1/events/a/b'), { kind: 'device', deviceId: 'd-1' });
    assert.deepEqual(classifyGatewayPublish('gw', true, '/devices/d-1/state'), { kind: 'device', deviceId: 'd-1' });
    for (const topic of ['/devices/gw/events', '/devices/gw/state', '/devices/', '/devices//attach', '/devices/d-1', 'devices/d-1/attach', 'a/b']) {
      assert.equal(classifyGatewayPublish('gw', true, topic), undefined, topic);
    }
    assert.deepEqual(classifyGatewayPublish('gw', true, '/devices/d-1/attach/x'), { kind: 'device', deviceId: 'd-1' }, 'not a control topic');
    // A device that is not a gateway keeps its old rules for other devices' topics (they are forbidden).
    assert.equal(classifyGatewayPublish('dev', false, '/devices/d-1/events'), undefined);
  });

  test("a gateway's filters on other devices' topics", () => {
    assert.equal(attachedFilterDevice('gw', '/devices/d-1/config'), 'd-1');
    assert.equal(attachedFilterDevice('gw', '/devices/d-1/commands/#'), 'd-1');
    assert.equal(attachedFilterDevice('gw', '/devices/+/config'), '+');
    for (const filter of ['/devices/gw/config', '/devices/gw/errors', '#', 'custom/topic', '$SYS/#', '/devices/d-1']) {
      assert.equal(attachedFilterDevice('gw', filter), undefined, filter);
    }
  });
});
