/**
 * Admin API routes of device certificates (Keyway's extension, AWS IoT style):
 * `…/devices/{device}/certificates[/{fingerprint}]`. Appended to ADMIN_ROUTES in routes.ts.
 */
import { formatDevice } from '../domain/names.js';
import { CERTIFICATE_STATES } from '../domain/resources.js';
import type { DeviceCertificate } from '../registry/device-certificates.js';
import { parseMaskPaths } from './field-mask.js';
import { EmptySchema, enumOf, object, string, timestamp, type JsonSchema } from './json-schemas.js';
import { timestampToJson } from './proto-json.js';
import { DEVICE, deviceOf } from './route-paths.js';
import type { ApiRoute } from './routes.js';
import type { ApiDeviceCertificate, ApiListDeviceCertificatesResponse, ApiRegisterDeviceCertificateRequest } from './wire-types.js';

const CERTIFICATES = `${DEVICE}/certificates`;
const CERTIFICATE = `${CERTIFICATES}/{fingerprint}`;
const operation = 'keyway.projects.locations.registries.devices.certificates';


export const DeviceCertificateSchema = object('DeviceCertificate', {
  name: string(2048),
  fingerprint: string(64),
  state: enumOf(CERTIFICATE_STATES),
  certificatePem: string(64 * 1024),
  subject: string(4096),
  issuer: string(4096),
  serialNumber: string(64),
  startTime: timestamp,
  expiryTime: timestamp,
  createTime: timestamp,
  updateTime: timestamp,
});

export const RegisterDeviceCertificateRequestSchema = object(
  'RegisterDeviceCertificateRequest',
  {
    // The leaf plus up to four intermediates, each at most 32 KiB.
    certificatePem: string(5 * 32 * 1024),
    state: enumOf(['ACTIVE', 'INACTIVE']),
  },
  ['certificatePem'],
);

const UpdateDeviceCertificateSchema: JsonSchema = {
  title: 'DeviceCertificateUpdate',
  type: 'object',
  additionalProperties: true,
  properties: { state: enumOf(CERTIFICATE_STATES) },
};

const ListDeviceCertificatesResponseSchema = object('ListDeviceCertificatesResponse', {
  deviceCertificates: { type: 'array', items: DeviceCertificateSchema },
});

export function deviceCertificateToJson(c: DeviceCertificate): ApiDeviceCertificate {
  return {
    name: `${formatDevice(c.device)}/certificates/${c.fingerprint}`,
    fingerprint: c.fingerprint,
    state: c.state,
    certificatePem: c.certificatePem,
    subject: c.subject,
    issuer: c.issuer,
    serialNumber: c.serialNumber,
    startTime: timestampToJson(c.notBefore),
    expiryTime: timestampToJson(c.notAfter),
    createTime: timestampToJson(c.createTime),
    updateTime: timestampToJson(c.updateTime),
  };
}

export const DEVICE_CERTIFICATE_ROUTES: readonly ApiRoute[] = [
  {
    operationId: `${operation}.create`,
    permission: 'deviceCertificates.create',
    method: 'POST',
    path: CERTIFICATES,
    summary: "Registers an X.509 certificate to a device; it must verify against the registry's CA certificates.",
    body: RegisterDeviceCertificateRequestSchema,
    response: DeviceCertificateSchema,
    handle: async ({ params, body }, { manager }) => {
      const b = body as ApiRegisterDeviceCertificateRequest;
      return deviceCertificateToJson(await manager.registerDeviceCertificate(deviceOf(params), b.certificatePem, b.state ?? 'ACTIVE'));
    },
  },
  {
    operationId: `${operation}.list`,
    permission: 'deviceCertificates.list',
    method: 'GET',
    path: CERTIFICATES,
    summary: "Lists a device's registered certificates.",
    response: ListDeviceCertificatesResponseSchema,
    handle: async ({ params }, { manager }): Promise<ApiListDeviceCertificatesResponse> => {
      const certificates = await manager.listDeviceCertificates(deviceOf(params));
      return certificates.length ? { deviceCertificates: certificates.map(deviceCertificateToJson) } : {};
    },
  },
  {
    operationId: `${operation}.get`,
    permission: 'deviceCertificates.get',
    method: 'GET',
    path: CERTIFICATE,
    summary: 'Gets a device certificate by the SHA-256 of its DER.',
    response: DeviceCertificateSchema,
    handle: async ({ params }, { manager }) =>
      deviceCertificateToJson(await manager.getDeviceCertificate(deviceOf(params), params.fingerprint ?? '')),
  },
  {
    operationId: `${operation}.patch`,
    permission: 'deviceCertificates.updateState',
    method: 'PATCH',
    path: CERTIFICATE,
    summary: 'Changes the state of a device certificate (updateMask=state): ACTIVE, INACTIVE, or REVOKED for good.',
    query: { properties: { updateMask: { type: 'string', maxLength: 4096 } }, required: ['updateMask'] },
    body: UpdateDeviceCertificateSchema,
    response: DeviceCertificateSchema,
    handle: async ({ params, query, body }, { manager }) => {
      const mask = parseMaskPaths(typeof query.updateMask === 'string' ? query.updateMask : undefined);
      const state = (body as { state?: unknown }).state;
      return deviceCertificateToJson(
        await manager.updateDeviceCertificateState(deviceOf(params), params.fingerprint ?? '', String(state ?? ''), mask),
      );
    },
  },
  {
    operationId: `${operation}.delete`,
    permission: 'deviceCertificates.delete',
    method: 'DELETE',
    path: CERTIFICATE,
    summary: 'Deletes a device certificate; connections made with it end.',
    response: EmptySchema,
    handle: async ({ params }, { manager }) => {
      await manager.deleteDeviceCertificate(deviceOf(params), params.fingerprint ?? '');
      return {};
    },
  },
];
