import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { gatewayErrorPayload } from './gateway-errors.js';

describe('gateway error messages', () => {
  test("Cloud IoT Core's fields, with the message that caused it when there was one", () => {
    const withPacket = JSON.parse(
      gatewayErrorPayload({
        type: 'GATEWAY_DEVICE_NOT_FOUND',
        deviceId: 'light-1',
        description: "The device 'light-1' is not attached to the gateway.",
        message: { messageType: 'PUBLISH', topic: '/devices/light-1/state', packetId: 10 },
      }).toString(),
    );
    assert.deepEqual(withPacket, {
      error_type: 'GATEWAY_DEVICE_NOT_FOUND',
      description: "The device 'light-1' is not attached to the gateway.",
      device_id: 'light-1',
      mqtt_message_info: { message_type: 'PUBLISH', topic: '/devices/light-1/state', packet_id: 10 },
    });
    const qos0 = JSON.parse(
      gatewayErrorPayload({ type: 'GATEWAY_ATTACHMENT_ERROR', deviceId: 'x', description: 'd', message: { messageType: 'PUBLISH', topic: 't' } }).toString(),
    );
    assert.deepEqual(qos0.mqtt_message_info, { message_type: 'PUBLISH', topic: 't' }, 'no packet id at QoS 0');
    const plain = JSON.parse(gatewayErrorPayload({ type: 'GATEWAY_DETACHMENT_DEVICE_ERROR', deviceId: 'x', description: 'The device was blocked.' }).toString());
    assert.deepEqual(Object.keys(plain), ['error_type', 'description', 'device_id']);
  });

  test('peer text is clipped and escaped', () => {
    const id = `"${'x'.repeat(500)}\n`;
    const parsed = JSON.parse(gatewayErrorPayload({ type: 'GATEWAY_ATTACHMENT_ERROR', deviceId: id, description: 'd' }).toString());
    assert.ok(parsed.device_id.length <= 201, 'clipped');
    assert.ok(parsed.device_id.startsWith('"x'));
  });
});
