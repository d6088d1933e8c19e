import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isKeywayError } from '../domain/errors.js';
import { LIMITS } from '../domain/resources.js';
import { applyProvisioningTemplate, checkProvisioningTemplate } from './provisioning-template.js';

const F = 'credentials[0].provisioningTemplate';

const refusedAt = (raw: unknown, field: string, pattern: RegExp): void =>
  assert.throws(
    () => checkProvisioningTemplate(raw, F),
    (e: unknown) =>
      isKeywayError(e) &&
      e.status === 'INVALID_ARGUMENT' &&
      e.fieldViolations[0]?.field === field &&
      pattern.test(e.fieldViolations[0].description),
  );

describe('checkProvisioningTemplate', () => {
  it('accepts placeholders from the known fields', () => {
    const t = checkProvisioningTemplate(
      {
        deviceId: 'sensor-${SerialNumber}',
        metadata: { batch: '${OrganizationalUnit}', where: '${Locality}/${Country}', fixed: 'yes' },
        configData: Buffer.from('{}'),
        gatewayType: 'GATEWAY',
      },
      F,
    );
    assert.equal(t.deviceId, 'sensor-${SerialNumber}');
    assert.equal(t.gatewayType, 'GATEWAY');
    assert.deepEqual(t.metadata, { batch: '${OrganizationalUnit}', where: '${Locality}/${Country}', fixed: 'yes' });
  });

  it('refuses an unknown or misspelt field name, naming it and the allowed ones', () => {
    refusedAt({ deviceId: '${CommonNmae}' }, `${F}.deviceId`, /unknown certificate field 'CommonNmae'; allowed: CommonName, .*SerialNumber/);
    refusedAt({ deviceId: '${CommonName}', metadata: { batch: '${OU}' } }, `${F}.metadata.batch`, /'OU'/);
    refusedAt({ deviceId: '$CommonName' }, `${F}.deviceId`, /'\$' that is not part/);
    refusedAt({ deviceId: 'x-${CommonName' }, `${F}.deviceId`, /'\$' that is not part/);
  });

  it('on a CA whose device certificates are known, refuses a field they do not carry when saved', () => {
    const known = { fields: ['CommonName', 'SerialNumber'], issuer: "Keyway's CA projects/p/locations/l/authorities/int-1" };
    const t = checkProvisioningTemplate({ deviceId: '${CommonName}', metadata: { serial: '${SerialNumber}' } }, F, known);
    assert.equal(t.deviceId, '${CommonName}');
    for (const [raw, field] of [
      [{ deviceId: '${OrganizationalUnit}-${CommonName}' }, `${F}.deviceId`],
      [{ deviceId: '${CommonName}', metadata: { batch: '${OrganizationalUnit}' } }, `${F}.metadata.batch`],
    ] as const) {
      assert.throws(
        () => checkProvisioningTemplate(raw, F, known),
        (e: unknown) =>
          isKeywayError(e) &&
          e.fieldViolations[0]?.field === field &&
          /'OrganizationalUnit', which the device certificates of Keyway's CA .*int-1 do not have; they carry CommonName, SerialNumber/.test(
            e.fieldViolations[0].description,
          ),
        field,
      );
    }
  });

  it('refuses a missing or literal device id, and characters no id may hold', () => {
    refusedAt({}, `${F}.deviceId`, /is required/);
    refusedAt({ deviceId: 'sensor-1' }, `${F}.deviceId`, /same for every device/);
    refusedAt({ deviceId: 'a b ${CommonName}' }, `${F}.deviceId`, /only letters/);
  });

  it('applies the device limits to metadata, config and gateway type', () => {
    refusedAt({ deviceId: '${CommonName}', metadata: { '1bad': 'x' } }, `${F}.metadata`, /key '1bad'/);
    refusedAt({ deviceId: '${CommonName}', configData: Buffer.alloc(LIMITS.configBytes + 1) }, `${F}.configData`, /at most/);
    refusedAt({ deviceId: '${CommonName}', gatewayType: 'ROUTER' }, `${F}.gatewayType`, /must be one of/);
    refusedAt({ deviceId: '${CommonName}', extra: 1 }, `${F}.extra`, /not a provisioning template field/);
    refusedAt('nope', F, /must be an object/);
  });
});

describe('applyProvisioningTemplate', () => {
  const template = checkProvisioningTemplate(
    { deviceId: 'sensor-${SerialNumber}', metadata: { batch: '${OrganizationalUnit}' }, configData: Buffer.from('c') },
    F,
  );

  it('fills the fields from the certificate', () => {
    assert.deepEqual(applyProvisioningTemplate(template, { SerialNumber: 'a1b2', OrganizationalUnit: 'Batch 7' }), {
      ok: true,
      deviceId: 'sensor-a1b2',
      metadata: { batch: 'Batch 7' },
      configData: Buffer.from('c'),
      gatewayType: 'GATEWAY_TYPE_UNSPECIFIED',
    });
  });

  it('says which field the certificate lacks and what needs it', () => {
    assert.deepEqual(applyProvisioningTemplate(template, { SerialNumber: 'a1b2' }), {
      ok: false,
      reason: "certificate has no OrganizationalUnit, which the template's metadata.batch needs",
    });
  });

  it('refuses a result that is not a valid device id', () => {
    const byCn = checkProvisioningTemplate({ deviceId: '${CommonName}' }, F);
    const r = applyProvisioningTemplate(byCn, { CommonName: 'has space' });
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.reason, /not a valid device id/);
    assert.equal(applyProvisioningTemplate(byCn, { CommonName: 'goog-x' }).ok, false);
    assert.equal(applyProvisioningTemplate(byCn, { CommonName: 'dev-1' }).ok, true);
  });
});
