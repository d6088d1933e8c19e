import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isKeywayError } from '../domain/errors.js';
import { parseGetConfig, parsePublishEvent, parseSetState } from './device-requests.js';

/** The refusal's message and first field, or a failure when nothing was refused. */
function refusal(run: () => unknown): { message: string; field: string | undefined; status: string } {
  try {
    run();
  } catch (e) {
    assert.ok(isKeywayError(e), `expected a KeywayError, got ${String(e)}`);
    return { message: e.message, field: e.fieldViolations[0]?.field, status: e.status };
  }
  assert.fail('expected a refusal');
}

// Bytes whose base64 differs between the alphabets: 0xfb 0xff 0xbf → "+/+/" standard, "-_-_" URL-safe.
const DATA = Buffer.from([0xfb, 0xff, 0xbf, 0x01]);

describe('publishEvent bodies', () => {
  it('decodes binary data in both base64 alphabets, padded or not, under either field name', () => {
    const texts = [
      DATA.toString('base64'),
      DATA.toString('base64').replace(/=+$/, ''),
      DATA.toString('base64url'),
      `${DATA.toString('base64url')}==`,
    ];
    assert.deepEqual(texts, ['+/+/AQ==', '+/+/AQ', '-_-_AQ', '-_-_AQ==']);
    for (const text of texts) {
      assert.deepEqual(parsePublishEvent({ binaryData: text }).payload, DATA, `binaryData ${text}`);
      assert.deepEqual(parsePublishEvent({ binary_data: text }).payload, DATA, `binary_data ${text}`);
    }
  });

  it('takes the subfolder verbatim under subFolder or sub_folder, and no subfolder when empty', () => {
    assert.equal(parsePublishEvent({ binary_data: '', sub_folder: 'a/b c' }).subfolder, 'a/b c');
    assert.equal(parsePublishEvent({ subFolder: 'x' }).subfolder, 'x');
    assert.equal('subfolder' in parsePublishEvent({ subFolder: '' }), false);
    assert.deepEqual(parsePublishEvent({}), { payload: Buffer.alloc(0) }, 'no data: an empty event, as proto3 reads it');
  });

  it('refuses subfolders that would not make a topic', () => {
    for (const bad of ['a/+', '#', 'a\u0000b', 'x'.repeat(257)]) {
      const r = refusal(() => parsePublishEvent({ subFolder: bad }));
      assert.equal(r.field, 'sub_folder', bad);
    }
  });

  it("refuses bad base64 with Google's message, naming the proto field", () => {
    for (const bad of ['not base64!', 'ab+_', 'a', 'abc==', '🙂']) {
      const r = refusal(() => parsePublishEvent({ binaryData: bad }));
      assert.equal(r.status, 'INVALID_ARGUMENT', bad);
      assert.equal(r.field, 'binary_data', bad);
      assert.match(r.message, /^Invalid value at 'binary_data' \(TYPE_BYTES\), Base64 decoding failed/, bad);
    }
  });

  it('refuses a field given under both spellings', () => {
    const r = refusal(() => parsePublishEvent({ binaryData: 'AA', binary_data: 'AA' }));
    assert.equal(r.field, 'binary_data');
    assert.match(r.message, /given twice/);
  });

  it('reads gatewayInfo in either spelling, as a oneof', () => {
    assert.deepEqual(parsePublishEvent({ gatewayInfo: { delegatedDeviceId: 'd1' } }).gatewayInfo, { delegatedDeviceId: 'd1' });
    assert.deepEqual(parsePublishEvent({ gateway_info: { gateway_id: 'gw' } }).gatewayInfo, { gatewayId: 'gw' });
    assert.equal(parsePublishEvent({ gateway_info: { gateway_id: '' } }).gatewayInfo, undefined, 'empty is unset');
    const r = refusal(() => parsePublishEvent({ gatewayInfo: { gatewayId: 'gw', delegated_device_id: 'd1' } }));
    assert.equal(r.field, 'gateway_info');
  });
});

describe('setState bodies', () => {
  it('reads state.binaryData or state.binary_data, in both alphabets', () => {
    assert.deepEqual(parseSetState({ state: { binaryData: DATA.toString('base64') } }).payload, DATA);
    assert.deepEqual(parseSetState({ state: { binary_data: DATA.toString('base64url') } }).payload, DATA);
    assert.deepEqual(parseSetState({ state: {}, gateway_info: { delegated_device_id: '123' } }), {
      payload: Buffer.alloc(0),
      gatewayInfo: { delegatedDeviceId: '123' },
    });
  });

  it('needs a state, and names a bad one by its proto path', () => {
    assert.equal(refusal(() => parseSetState({})).field, 'state');
    const r = refusal(() => parseSetState({ state: { binary_data: '!!' } }));
    assert.equal(r.field, 'state.binary_data');
    assert.match(r.message, /^Invalid value at 'state\.binary_data' \(TYPE_BYTES\), Base64 decoding failed/);
  });
});

describe('getConfig queries', () => {
  it('reads localVersion or local_version; absent or empty is 0', () => {
    assert.deepEqual(parseGetConfig({ local_version: '7' }), { localVersion: 7 });
    assert.deepEqual(parseGetConfig({ localVersion: '0' }), { localVersion: 0 });
    assert.deepEqual(parseGetConfig({}), { localVersion: 0 });
    assert.deepEqual(parseGetConfig({ local_version: '' }), { localVersion: 0 });
  });

  it('refuses versions that are not non-negative integers', () => {
    for (const bad of ['abc', '-1', '1.5', '99999999999999999999']) {
      const r = refusal(() => parseGetConfig({ local_version: bad }));
      assert.equal(r.field, 'local_version', bad);
      assert.match(r.message, /TYPE_INT64/, bad);
    }
    assert.match(refusal(() => parseGetConfig({ localVersion: '1', local_version: '2' })).message, /more than once/);
  });

  it('reads gatewayInfo fields by path, each segment in either spelling', () => {
    assert.deepEqual(parseGetConfig({ 'gatewayInfo.gatewayId': 'gw' }).gatewayInfo, { gatewayId: 'gw' });
    assert.deepEqual(parseGetConfig({ 'gateway_info.delegated_device_id': 'd' }).gatewayInfo, { delegatedDeviceId: 'd' });
    assert.deepEqual(parseGetConfig({ 'gateway_info.delegatedDeviceId': 'd' }).gatewayInfo, { delegatedDeviceId: 'd' });
    assert.equal(refusal(() => parseGetConfig({ 'gatewayInfo.gatewayId': 'gw', 'gateway_info.delegated_device_id': 'd' })).field, 'gateway_info');
  });
});
