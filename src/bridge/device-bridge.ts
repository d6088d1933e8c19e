/**
 * Cloud IoT Core's device HTTP bridge (reference §2) on Fastify, on the device HTTPS listener:
 *
 * - `POST /v1/{device}:publishEvent` `{binaryData, subFolder?, gatewayInfo?}` → 200 `{}`
 * - `POST /v1/{device}:setState` `{state: {binaryData}, gatewayInfo?}` → 200 `{}`
 * - `GET /v1/{device}/config?localVersion=N` → 200 `{version, binaryData}`
 *
 * `{device}` is `projects/…/devices/{id or numeric id}`; every request carries the device's JWT
 * (request-auth). Events and state go where MQTT's go (DeviceMessageSink: the broker's backend
 * namespace) after the same limits and quotas. Failures are google.rpc envelopes (bridge-errors).
 *
 * HTTPS only (TLS 1.2+), HTTP/1.1 only. By default the server asks for a client certificate
 * without requiring one, for MQTT over WebSockets served on the same server (its `upgrade` event);
 * `clientCertificates: 'off'` never asks, as browsers opening WebSockets need.
 */
import type { Server as HttpsServer } from 'node:https';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { AuditSink } from '../domain/audit-events.js';
import { KeywayError } from '../domain/errors.js';
import { LIMITS } from '../domain/resources.js';
import type {
  AuthenticatedDevice,
  DeviceGateway,
  DeviceMessageSink,
  GatewayDelegatedDevice,
  JwtAuthenticatedDevice,
} from '../registry/device-manager.js';
import { describeLimit, type DeviceQuotas, type QuotaVerdict, type RateLimitedDevice } from '../registry/device-quotas.js';
import { bridgeReply, payloadTooLarge, quotaExceeded } from './bridge-errors.js';
import {
  GET_CONFIG_QUERY,
  type GatewayInfo,
  parseGetConfig,
  parsePublishEvent,
  parseSetState,
  PUBLISH_EVENT_BODY,
  SET_STATE_BODY,
} from './device-requests.js';
import {
  actingDevice,
  authenticateRequest,
  authorizeAction,
  type BridgePolicies,
  type DeviceAction,
  type RequestAuthDeps,
  type RequestOrigin,
} from './request-auth.js';

/** PEM server certificate chain(s) and key(s), as every TLS listener takes them. */
export interface BridgeCredentials {
  readonly cert: string | readonly string[];
  readonly key: string | readonly string[];
}

export interface BridgeLimits {
  /** A TLS handshake must finish within this. */
  readonly handshakeTimeoutMs: number;
  /** The request line and headers must arrive within this. */
  readonly headersTimeoutMs: number;
  /** The whole request must arrive within this. */
  readonly requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  readonly keepAliveTimeoutMs: number;
  /** Request line and headers together. */
  readonly maxHeaderBytes: number;
}

export const DEFAULT_BRIDGE_LIMITS: BridgeLimits = {
  handshakeTimeoutMs: 10_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 30_000,
  maxHeaderBytes: 16 * 1024,
};

/**
 * `request`: every handshake asks for a client certificate (never required nor checked here);
 * `off`: none is asked for, so none is ever presented.
 */
export type ClientCertificateMode = 'request' | 'off';

export interface DeviceBridgeOptions {
  readonly gateway: DeviceGateway;
  /** Where accepted events and states go. */
  readonly messages: DeviceMessageSink;
  /** Rate limits shared with MQTT; none when absent. */
  readonly quotas?: DeviceQuotas;
  /** Receives the bridge's authentication and authorization refusals. */
  readonly audit?: AuditSink;
  /** The devices' policies, checked as the broker checks them; the built-in grants alone without. */
  readonly policies?: BridgePolicies;
  readonly tls: BridgeCredentials;
  /** `request` when absent. */
  readonly clientCertificates?: ClientCertificateMode;
  readonly logger: Logger;
  readonly limits?: Partial<BridgeLimits>;
  readonly now?: () => Date;
}

export interface DeviceBridge {
  /** The HTTPS server, for other protocols served on it by upgrade (MQTT over WebSockets). */
  readonly server: HttpsServer;
  /** Resolves with the bound port. */
  listen(host: string, port: number): Promise<number>;
  /** New server certificates for handshakes from now on; throws, keeping the old ones, when they do not load. */
  setTlsCredentials(credentials: BridgeCredentials): void;
  /** Stops accepting and waits for the connections it serves to end. */
  close(): Promise<void>;
  /** For tests: requests without a network (Fastify's inject). */
  readonly app: FastifyInstance;
}

/** base64 length of `bytes` bytes, padded. */
const base64Length = (bytes: number): number => Math.ceil(bytes / 3) * 4;
/** Room for the JSON around the data: field names, a subfolder, gatewayInfo. */
const ENVELOPE_ROOM = 8 * 1024;
export const EVENT_BODY_LIMIT = base64Length(LIMITS.eventBytes) + ENVELOPE_ROOM;
export const STATE_BODY_LIMIT = base64Length(LIMITS.stateBytes) + ENVELOPE_ROOM;
/** A GET has no body worth reading. */
const CONFIG_BODY_LIMIT = 1024;

const DEVICE = '/v1/projects/:project/locations/:location/registries/:registry/devices/:device';
/** A custom verb follows the device id (which never contains ':'). */
const deviceVerb = (verb: string): string => `${DEVICE}([^:/]+)::${verb}`;

interface DeviceParams {
  readonly project: string;
  readonly location: string;
  readonly registry: string;
  readonly device: string;
}

const devicePathOf = (p: DeviceParams): string =>
  `projects/${p.project}/locations/${p.location}/registries/${p.registry}/devices/${p.device}`;

const EMPTY_RESPONSE = { 200: { type: 'object', additionalProperties: false, properties: {} } };
const CONFIG_RESPONSE = {
  200: { type: 'object', additionalProperties: false, properties: { version: { type: 'string' }, binaryData: { type: 'string' } } },
};

const secureContext = (c: BridgeCredentials): { cert: string | string[]; key: string | string[]; minVersion: 'TLSv1.2' } => ({
  cert: typeof c.cert === 'string' ? c.cert : [...c.cert],
  key: typeof c.key === 'string' ? c.key : [...c.key],
  minVersion: 'TLSv1.2',
});

/** Throws the 429 when a quota refused `device`. */
function admit(verdict: QuotaVerdict | undefined, device: RateLimitedDevice): void {
  if (verdict && !verdict.ok) throw quotaExceeded(describeLimit(verdict.limit, device.rateLimits), verdict.retryAfterSeconds);
}

/** Builds the bridge; `listen` starts it. */
export async function createDeviceBridge(o: DeviceBridgeOptions): Promise<DeviceBridge> {
  const limits = { ...DEFAULT_BRIDGE_LIMITS, ...o.limits };
  const now = o.now ?? (() => new Date());
  const app = Fastify({
    loggerInstance: o.logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: EVENT_BODY_LIMIT,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    routerOptions: { maxParamLength: 512 },
    // Only the three calls of the device API; a HEAD would fetch a config for nothing.
    exposeHeadRoutes: false,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allowUnionTypes: true, allErrors: false } },
    https: {
      ...secureContext(o.tls),
      // Asked for, never required nor checked here: WebSocket clients may authenticate with it.
      // A server option, not part of the secure context: setTlsCredentials keeps it.
      requestCert: (o.clientCertificates ?? 'request') === 'request',
      rejectUnauthorized: false,
      handshakeTimeout: limits.handshakeTimeoutMs,
      ALPNProtocols: ['http/1.1'],
      maxHeaderSize: limits.maxHeaderBytes,
    },
  }) as unknown as FastifyInstance<HttpsServer>;
  app.server.headersTimeout = limits.headersTimeoutMs;
  app.server.on('tlsClientError', (e, socket) => o.logger.debug({ err: e.message, remote: socket.remoteAddress }, 'TLS handshake failed'));

  // Devices' HTTP libraries do not all label JSON as such (curl -d says form data): every body is JSON here.
  app.addContentTypeParser('*', { parseAs: 'string' }, app.getDefaultJsonParser('error', 'error'));

  const deps: RequestAuthDeps = {
    gateway: o.gateway,
    logger: o.logger,
    now,
    ...(o.audit ? { audit: o.audit } : {}),
    ...(o.policies ? { policies: o.policies } : {}),
  };
  const callers = new WeakMap<FastifyRequest, JwtAuthenticatedDevice>();
  const originOf = (request: FastifyRequest): RequestOrigin => ({
    source: request.ip,
    request: `${request.method} ${request.url.split('?')[0] ?? ''}`,
  });
  const callerOf = (request: FastifyRequest): JwtAuthenticatedDevice => {
    const caller = callers.get(request);
    if (!caller) throw new KeywayError('INTERNAL', 'no authenticated device on the request');
    return caller;
  };
  /** The device the request is for (the caller, or the device its gateway acts for), once its policy allows `what`. */
  const authorizedDevice = async (request: FastifyRequest, info: GatewayInfo | undefined, what: DeviceAction): Promise<AuthenticatedDevice | GatewayDelegatedDevice> => {
    const origin = originOf(request);
    const device = await actingDevice(deps, callerOf(request), info, origin);
    await authorizeAction(deps, device, what, origin);
    return device;
  };

  // Before the body is read: an unauthenticated or over-quota caller never makes the server buffer one.
  const authenticate = async (request: FastifyRequest): Promise<void> => {
    const caller = await authenticateRequest(deps, devicePathOf(request.params as DeviceParams), request.headers.authorization, originOf(request));
    callers.set(request, caller);
    admit(o.quotas?.admitConnection(caller, 'http'), caller);
  };

  app.addHook('onResponse', async (request, reply) => {
    request.log.debug(
      { device: callers.get(request)?.key, method: request.method, url: request.url, statusCode: reply.statusCode, durationMs: Math.round(reply.elapsedTime) },
      'device request',
    );
  });

  app.setErrorHandler(async (error, request, reply: FastifyReply) => {
    const { reply: r, headers, code } = bridgeReply(error);
    if (r.internal) request.log.error({ err: error }, 'device request failed');
    const caller = callers.get(request);
    // The device's lastErrorStatus, as MQTT records its errors; authentication refusals are not the device's.
    if (caller) o.gateway.recordError(caller.key, { code, message: `http: ${r.body.error.message}` }, now());
    return reply.code(r.httpStatus).headers(headers).send(r.body);
  });
  app.setNotFoundHandler(async (request, reply) => {
    const { reply: r } = bridgeReply(new KeywayError('NOT_FOUND', `No such method: ${request.method} ${request.url.split('?')[0] ?? ''}`));
    return reply.code(r.httpStatus).send(r.body);
  });

  app.post(
    deviceVerb('publishEvent'),
    { onRequest: authenticate, bodyLimit: EVENT_BODY_LIMIT, schema: { body: PUBLISH_EVENT_BODY, response: EMPTY_RESPONSE } },
    async (request) => {
      const event = parsePublishEvent(request.body);
      if (event.payload.length > LIMITS.eventBytes) throw payloadTooLarge('telemetry event', event.payload.length, LIMITS.eventBytes);
      const device = await authorizedDevice(request, event.gatewayInfo, {
        action: 'publish',
        topic: 'events',
        ...(event.subfolder !== undefined ? { subfolder: event.subfolder } : {}),
      });
      admit(o.quotas?.admitTelemetry(device, event.payload.length, 'http'), device);
      o.gateway.recordEvent(device.key, now());
      o.messages.publishEvent(device, event.payload, event.subfolder);
      return {};
    },
  );

  app.post(
    deviceVerb('setState'),
    { onRequest: authenticate, bodyLimit: STATE_BODY_LIMIT, schema: { body: SET_STATE_BODY, response: EMPTY_RESPONSE } },
    async (request) => {
      const state = parseSetState(request.body);
      if (state.payload.length > LIMITS.stateBytes) throw payloadTooLarge('state', state.payload.length, LIMITS.stateBytes);
      const device = await authorizedDevice(request, state.gatewayInfo, { action: 'publish', topic: 'state' });
      admit(o.quotas?.admitState(device), device);
      // Stored before it is published, as over MQTT: a 200 means Keyway has it.
      await o.gateway.recordState(device.key, state.payload, now());
      o.messages.publishState(device, state.payload);
      return {};
    },
  );

  app.get(
    `${DEVICE}/config`,
    { onRequest: authenticate, bodyLimit: CONFIG_BODY_LIMIT, schema: { querystring: GET_CONFIG_QUERY, response: CONFIG_RESPONSE } },
    async (request) => {
      const { localVersion, gatewayInfo } = parseGetConfig(request.query);
      const device = await authorizedDevice(request, gatewayInfo, { action: 'receive', topic: 'config' });
      const latest = await o.gateway.latestConfig(device.key);
      if (localVersion > latest.version) {
        throw new KeywayError('OUT_OF_RANGE', `The local version ${localVersion} is newer than the latest version ${latest.version}.`);
      }
      const version = String(latest.version);
      // A device that has the latest version gets no data, only the version it already has.
      if (localVersion !== 0 && localVersion === latest.version) return { version };
      o.gateway.recordConfigSent(device.key, latest.version, now());
      return { version, binaryData: latest.binaryData.toString('base64') };
    },
  );

  await app.ready();
  return {
    app,
    server: app.server,
    listen: async (host, port) => {
      await app.listen({ host, port });
      const address = app.server.address();
      return typeof address === 'object' && address ? address.port : port;
    },
    setTlsCredentials: (credentials) => app.server.setSecureContext(secureContext(credentials)),
    close: () => app.close(),
  };
}
