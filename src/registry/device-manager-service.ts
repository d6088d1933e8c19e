/**
 * The device manager: registries, devices, credentials, configs, states and commands for the
 * admin API (DeviceManager), and authentication plus activity records for the device plane
 * (DeviceGateway). Changes that matter to live connections are announced on the bus after they
 * are committed.
 */
import { pino, type Logger } from 'pino';
import type { Bus, DeviceKey } from '../bus/bus.js';
import { alreadyExists, failedPrecondition, fieldError, KeywayError, notFound } from '../domain/errors.js';
import {
  checkResourceId,
  formatDevice,
  formatLocation,
  formatRegistry,
  isNumId,
  isResourceId,
  parseLocation,
  type DeviceName,
  type LocationName,
  registryOf,
  type RegistryName,
} from '../domain/names.js';
import {
  GATEWAY_AUTH_METHODS,
  GATEWAY_TYPES,
  LIMITS,
  LOG_LEVELS,
  type Device,
  type DeviceConfig,
  type DeviceProtocol,
  type DeviceState,
  type Page,
  type PageRequest,
  type Registry,
  type Status,
} from '../domain/resources.js';
import type { DevicePatch, DeviceRecord, RegistryPatch, Store, StoredCredential } from '../store/store.js';
import { deviceNameOfKey, deviceRefOf } from './device-refs.js';
import { DeviceActivity } from './device-activity.js';
import { GatewayBindings, gatewayHasBoundDevices } from './gateway-bindings.js';
import type {
  AuthenticatedDevice,
  CertificateAuthenticatedDevice,
  DeviceAuthResult,
  GatewayDelegatedDevice,
  DeviceGateway,
  DeviceInput,
  DeviceManager,
  JwtAuthenticatedDevice,
  ListDevicesRequest,
  RegistryInput,
} from './device-manager.js';
import { checkCredentialsTrusted } from './credential-trust.js';
import { mqttAccessOf } from './device-plane-rules.js';
import { checkBlocked, checkCredentials, checkMetadata, isUsable } from './device-rules.js';
import { authenticateDeviceJwt } from './jwt-authentication.js';
import { authenticateDeviceCertificate } from './certificate-authentication.js';
import { DeviceCertificates, type DeviceCertificate } from './device-certificates.js';
import type { RevocationSource } from '../domain/certificate-keys.js';
import { randomNumId } from './num-id.js';
import { describeLimit, resolveRateLimits, type ConfigUpdateQuotas } from './device-quotas.js';
import { decodePageToken, pageSizeOf, toPage } from './paging.js';
import {
  checkBytes,
  checkCommandData,
  checkConfigData,
  checkCount,
  checkSubfolder,
  checkVersionToUpdate,
} from './payload-rules.js';
import {
  checkEnum,
  checkEventNotificationConfigs,
  checkHttpState,
  checkMqttState,
  checkRegistryLogLevel,
  checkStateNotificationConfig,
  REGISTRY_DEFAULTS,
} from './registry-rules.js';
import { DEVICE_MASK_PATHS, parseUpdateMask, REGISTRY_MASK_PATHS } from './update-mask.js';
import { uploadRegistryCrl, type CrlUploadResult } from './registry-crl.js';
import { checkRateLimits, patchRateLimits } from './rate-limit-rules.js';
import { caKeyOf, checkDeviceAuthMethod, checkRegistryCredentials, registryCaFingerprints } from './registry-credentials.js';
import type { IssuerProfiles } from './provisioning-template.js';

export interface DeviceManagerServiceOptions {
  readonly store: Store;
  readonly bus: Bus;
  readonly now?: () => Date;
  readonly logger?: Logger;
  /** How often activity timestamps are written behind; 1 s by default. */
  readonly flushIntervalMs?: number;
  /**
   * Revocations checked on every certificate authentication besides the registry's uploaded CRLs
   * (which the service always checks): Keyway's own PKI.
   */
  readonly revocations?: readonly RevocationSource[];
  /** CAs whose device certificates' subject is known (Keyway's own), so templates on them are checked against it. */
  readonly issuerProfiles?: IssuerProfiles;
  /** The registry's `configUpdatesPerSecond` per device; configuration updates are not limited without it. */
  readonly configQuotas?: ConfigUpdateQuotas;
}

/** Numeric ids are random; two draws colliding twice in a row means something else is wrong. */
const NUM_ID_ATTEMPTS = 5;
/** `deviceIds` / `deviceNumIds` filters, as Cloud IoT Core bounded them. */
const LIST_FILTER_MAX = 10_000;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const keyOf = (device: Device): DeviceKey => formatDevice(device.name);

/** Identifies a credential list for change detection: which keys, until when. */
const credentialSignature = (credentials: readonly StoredCredential[]): string =>
  JSON.stringify(credentials.map((c) => [c.fingerprint, c.expirationTime?.getTime() ?? null]));

export class DeviceManagerService implements DeviceManager, DeviceGateway {
  readonly #store: Store;
  readonly #bus: Bus;
  readonly #now: () => Date;
  readonly #logger: Logger;
  readonly #activity: DeviceActivity;
  readonly #revocations: readonly RevocationSource[];
  readonly #issuerProfiles: IssuerProfiles | undefined;
  readonly #configQuotas: ConfigUpdateQuotas | undefined;
  readonly #certificates: DeviceCertificates;
  readonly #gateways: GatewayBindings;

  constructor(options: DeviceManagerServiceOptions) {
    this.#store = options.store;
    this.#bus = options.bus;
    this.#now = options.now ?? (() => new Date());
    this.#logger = options.logger ?? pino({ level: 'silent' });
    this.#activity = new DeviceActivity({
      store: this.#store,
      logger: this.#logger,
      flushIntervalMs: options.flushIntervalMs,
    });
    this.#revocations = options.revocations ?? [];
    this.#issuerProfiles = options.issuerProfiles;
    this.#configQuotas = options.configQuotas;
    this.#certificates = new DeviceCertificates({
      store: this.#store,
      bus: this.#bus,
      logger: this.#logger,
      now: this.#now,
      revocations: this.#revocations,
    });
    this.#gateways = new GatewayBindings({
      store: this.#store,
      bus: this.#bus,
      logger: this.#logger,
      now: this.#now,
      recordAccess: (device, gatewayId, at) => this.#activity.record(device, { lastAccessedGateway: { id: gatewayId, time: at } }),
    });
  }

  // ---- registries ---------------------------------------------------------------------------

  async #checkRegistryCredentials(raw: unknown): Promise<Registry['credentials']> {
    const issued = this.#issuerProfiles ? await this.#issuerProfiles.issuedFields(registryCaFingerprints(raw)) : undefined;
    return checkRegistryCredentials(raw, this.#now(), issued);
  }

  async createRegistry(parent: LocationName, id: string, input: RegistryInput): Promise<Registry> {
    const location = parseLocation(formatLocation(parent), 'parent');
    checkResourceId('deviceRegistry.id', id);
    const state = checkStateNotificationConfig(input.stateNotificationConfig);
    const rateLimits = checkRateLimits(input.rateLimits);
    const registry: Registry = {
      name: { ...location, registry: id },
      credentials: await this.#checkRegistryCredentials(input.credentials ?? []),
      deviceAuthMethod: checkDeviceAuthMethod(input.deviceAuthMethod),
      eventNotificationConfigs: checkEventNotificationConfigs(input.eventNotificationConfigs ?? []),
      ...(state ? { stateNotificationConfig: state } : {}),
      mqttEnabledState:
        input.mqttEnabledState === undefined ? REGISTRY_DEFAULTS.mqttEnabledState : checkMqttState(input.mqttEnabledState),
      httpEnabledState:
        input.httpEnabledState === undefined ? REGISTRY_DEFAULTS.httpEnabledState : checkHttpState(input.httpEnabledState),
      logLevel: input.logLevel === undefined ? REGISTRY_DEFAULTS.logLevel : checkRegistryLogLevel(input.logLevel),
      ...(rateLimits ? { rateLimits } : {}),
    };
    if ((await this.#store.insertRegistry(registry, this.#now())) === 'exists')
      throw alreadyExists(`Registry ${formatRegistry(registry.name)} already exists.`);
    this.#logger.info({ registry: formatRegistry(registry.name) }, 'registry created');
    return registry;
  }

  async getRegistry(name: RegistryName): Promise<Registry> {
    const registry = await this.#store.getRegistry(registryOf(name));
    if (!registry) throw notFound(`Registry ${formatRegistry(name)} not found.`);
    return registry;
  }

  async listRegistries(parent: LocationName, page: PageRequest): Promise<Page<Registry>> {
    const size = pageSizeOf(page);
    const afterId = decodePageToken(page.pageToken);
    const registries = await this.#store.listRegistries(
      { project: parent.project, location: parent.location },
      { limit: size + 1, ...(afterId !== undefined ? { afterId } : {}) },
    );
    return toPage(registries, size, (r) => r.name.registry);
  }

  async patchRegistry(name: RegistryName, input: RegistryInput, updateMask: readonly string[]): Promise<Registry> {
    const paths = parseUpdateMask(updateMask, REGISTRY_MASK_PATHS);
    // A masked field that is absent from the input is reset, as field-mask semantics say.
    const patch: Mutable<RegistryPatch> = {};
    if (paths.has('event_notification_configs'))
      patch.eventNotificationConfigs = checkEventNotificationConfigs(input.eventNotificationConfigs ?? []);
    if (paths.has('state_notification_config'))
      patch.stateNotificationConfig = checkStateNotificationConfig(input.stateNotificationConfig) ?? null;
    if (paths.has('mqtt_config') || paths.has('mqtt_config.mqtt_enabled_state'))
      patch.mqttEnabledState =
        input.mqttEnabledState === undefined ? REGISTRY_DEFAULTS.mqttEnabledState : checkMqttState(input.mqttEnabledState);
    if (paths.has('http_config') || paths.has('http_config.http_enabled_state'))
      patch.httpEnabledState =
        input.httpEnabledState === undefined ? REGISTRY_DEFAULTS.httpEnabledState : checkHttpState(input.httpEnabledState);
    if (paths.has('log_level'))
      patch.logLevel = input.logLevel === undefined ? REGISTRY_DEFAULTS.logLevel : checkRegistryLogLevel(input.logLevel);
    if (paths.has('credentials')) patch.credentials = await this.#checkRegistryCredentials(input.credentials ?? []);
    if (paths.has('device_auth_method')) patch.deviceAuthMethod = checkDeviceAuthMethod(input.deviceAuthMethod);
    const needsBefore =
      patch.credentials !== undefined ||
      patch.mqttEnabledState !== undefined ||
      patch.deviceAuthMethod !== undefined ||
      [...paths].some((p) => p.startsWith('rate_limits.'));
    const before = needsBefore ? await this.#store.getRegistry(registryOf(name)) : undefined;
    const limits = patchRateLimits(before?.rateLimits, input.rateLimits, paths);
    if (limits) patch.rateLimits = limits.rateLimits;
    const updated = await this.#store.updateRegistry(registryOf(name), patch);
    if (!updated) throw notFound(`Registry ${formatRegistry(name)} not found.`);
    if (before && patch.credentials !== undefined) this.#announceRemovedCas(before, updated);
    if (before) this.#announceAccessChange(before, updated);
    return updated;
  }

  async uploadRegistryCrl(name: RegistryName, crl: string): Promise<CrlUploadResult> {
    const result = await uploadRegistryCrl(this.#store, registryOf(name), crl, this.#now());
    if (result.revokedKeys.length > 0) this.#bus.publishCertificatesRevoked({ keys: result.revokedKeys, reason: 'CRL uploaded' });
    this.#logger.info(
      { registry: formatRegistry(name), issuer: result.issuer, revoked: result.revokedCount },
      'registry CRL uploaded',
    );
    return result;
  }

  async deleteRegistry(name: RegistryName): Promise<void> {
    switch (await this.#store.deleteRegistry(registryOf(name))) {
      case 'deleted':
        this.#logger.info({ registry: formatRegistry(name) }, 'registry deleted');
        return;
      case 'not-found':
        throw notFound(`Registry ${formatRegistry(name)} not found.`);
      case 'not-empty':
        throw failedPrecondition(`Registry ${formatRegistry(name)} still has devices; delete them first.`);
    }
  }

  // ---- devices ------------------------------------------------------------------------------

  async createDevice(registry: RegistryName, id: string, input: DeviceInput): Promise<Device> {
    checkResourceId('device.id', id);
    const credentials = checkCredentials(input.credentials ?? []);
    const blocked = input.blocked === undefined ? false : checkBlocked(input.blocked);
    const metadata = checkMetadata(input.metadata ?? {});
    const logLevel = input.logLevel === undefined ? 'LOG_LEVEL_UNSPECIFIED' : checkEnum(LOG_LEVELS, input.logLevel, 'device.logLevel');
    const gatewayType = checkEnum(
      GATEWAY_TYPES,
      input.gatewayConfig?.gatewayType ?? 'GATEWAY_TYPE_UNSPECIFIED',
      'device.gatewayConfig.gatewayType',
    );
    const gatewayAuthMethod = checkEnum(
      GATEWAY_AUTH_METHODS,
      input.gatewayConfig?.gatewayAuthMethod ?? 'GATEWAY_AUTH_METHOD_UNSPECIFIED',
      'device.gatewayConfig.gatewayAuthMethod',
    );
    const configData =
      input.configData === undefined ? Buffer.alloc(0) : checkConfigData(input.configData, 'device.config.binaryData');
    const reg = registryOf(registry);
    const name: DeviceName = { ...reg, device: id };
    const target = await this.#store.getRegistry(reg);
    if (!target) throw notFound(`Registry ${formatRegistry(reg)} not found.`);
    checkCredentialsTrusted(target, credentials, [], this.#now());

    for (let attempt = 1; attempt <= NUM_ID_ATTEMPTS; attempt++) {
      const result = await this.#store.insertDevice({
        name,
        numId: randomNumId(),
        credentials,
        blocked,
        metadata,
        logLevel,
        gatewayType,
        gatewayAuthMethod,
        configData,
        createdAt: this.#now(),
      });
      switch (result) {
        case 'created': {
          const created = await this.#store.findDevice(reg, { id });
          if (!created) throw notFound(`Device ${formatDevice(name)} not found.`);
          this.#logger.info({ device: keyOf(created.device), numId: created.device.numId }, 'device created');
          return created.device;
        }
        case 'registry-not-found':
          throw notFound(`Registry ${formatRegistry(reg)} not found.`);
        case 'id-taken':
          throw alreadyExists(`Device ${formatDevice(name)} already exists.`);
        case 'num-id-taken':
          continue;
      }
    }
    throw new KeywayError('ABORTED', 'Could not allocate a unique numeric id for the device; try again.');
  }

  async getDevice(name: DeviceName): Promise<Device> {
    const { device } = await this.#resolve(name);
    return this.#activity.withPending(device);
  }

  async listDevices(registry: RegistryName, request: ListDevicesRequest): Promise<Page<Device>> {
    const size = pageSizeOf(request);
    const afterId = decodePageToken(request.pageToken);
    const ids = checkFilter(request.deviceIds, 'deviceIds', isResourceId);
    const numIds = checkFilter(request.deviceNumIds, 'deviceNumIds', isNumId);
    const reg = registryOf(registry);
    if (!(await this.#store.getRegistry(reg))) throw notFound(`Registry ${formatRegistry(reg)} not found.`);
    const gatewayFilter = await this.#gateways.listQuery(reg, request.gatewayListOptions);
    const records = await this.#store.listDevices(reg, {
      limit: size + 1,
      ...(afterId !== undefined ? { afterId } : {}),
      ...(ids ? { ids } : {}),
      ...(numIds ? { numIds } : {}),
      ...gatewayFilter,
    });
    const devices = records.map(({ device }) => this.#activity.withPending(device));
    return toPage(devices, size, (d) => d.name.device);
  }

  async patchDevice(name: DeviceName, input: DeviceInput, updateMask: readonly string[]): Promise<Device> {
    const paths = parseUpdateMask(updateMask, DEVICE_MASK_PATHS);
    const patch: Mutable<DevicePatch> = {};
    if (paths.has('credentials')) patch.credentials = checkCredentials(input.credentials ?? []);
    if (paths.has('blocked')) patch.blocked = input.blocked === undefined ? false : checkBlocked(input.blocked);
    if (paths.has('metadata')) patch.metadata = checkMetadata(input.metadata ?? {});
    if (paths.has('log_level'))
      patch.logLevel =
        input.logLevel === undefined ? 'LOG_LEVEL_UNSPECIFIED' : checkEnum(LOG_LEVELS, input.logLevel, 'device.logLevel');
    if (paths.has('gateway_config.gateway_auth_method'))
      patch.gatewayAuthMethod = checkEnum(
        GATEWAY_AUTH_METHODS,
        input.gatewayConfig?.gatewayAuthMethod ?? 'GATEWAY_AUTH_METHOD_UNSPECIFIED',
        'device.gatewayConfig.gatewayAuthMethod',
      );
    const current = await this.#resolve(name);
    if (patch.credentials !== undefined) {
      const target = await this.#store.getRegistry(registryOf(name));
      if (!target) throw notFound(`Registry ${formatRegistry(name)} not found.`);
      checkCredentialsTrusted(target, patch.credentials, current.device.credentials, this.#now());
    }
    const result = await this.#store.updateDevice(current.device.numId, patch);
    if (!result) throw notFound(`Device ${formatDevice(name)} not found.`);
    this.#announceAuthChange(result.before, result.after);
    this.#gateways.announceChange(result.before.device, result.after.device);
    // Metadata holds the device's type label and its policy variables: its policy may have changed.
    if (JSON.stringify(result.before.device.metadata) !== JSON.stringify(result.after.device.metadata))
      this.#bus.publishPoliciesChanged({ registry: formatRegistry(result.after.device.name), devices: [keyOf(result.after.device)] });
    return this.#activity.withPending(result.after.device);
  }

  async deleteDevice(name: DeviceName): Promise<void> {
    const current = await this.#resolve(name);
    const gateways = await this.#gateways.gatewaysOf(current.device);
    const deleted = await this.#store.deleteDevice(current.device.numId);
    if (!deleted) throw notFound(`Device ${formatDevice(name)} not found.`);
    if (deleted === 'has-bound-devices') throw gatewayHasBoundDevices(current.device.name);
    this.#gateways.announceDeleted(deleted.device, gateways);
    const key = keyOf(deleted.device);
    this.#activity.forget(key);
    this.#bus.publishRevoked({ device: key, reason: 'deleted', blocked: deleted.device.blocked, credentialFingerprints: [] });
    this.#logger.info({ device: key }, 'device deleted');
  }

  // ---- configs, commands, states ------------------------------------------------------------

  async modifyCloudToDeviceConfig(name: DeviceName, versionToUpdate: number, binaryData: Buffer): Promise<DeviceConfig> {
    const expected = checkVersionToUpdate(versionToUpdate);
    const data = checkConfigData(binaryData);
    const { device } = await this.#resolve(name);
    await this.#admitConfigUpdate(device.name, keyOf(device));
    const result = await this.#store.insertConfigVersion(device.numId, {
      binaryData: data,
      at: this.#now(),
      keep: LIMITS.configVersionsKept,
      ...(expected !== 0 ? { ifCurrentVersion: expected } : {}),
    });
    switch (result.status) {
      case 'not-found':
        throw notFound(`Device ${formatDevice(name)} not found.`);
      case 'stale':
        throw failedPrecondition(
          `The config version to update (${expected}) does not match the current version (${result.currentVersion}).`,
        );
      case 'created':
        this.#bus.publishConfig({ device: keyOf(device), version: result.config.version, binaryData: result.config.binaryData });
        return result.config;
    }
  }

  /** RESOURCE_EXHAUSTED when the device's configuration changes faster than its registry allows (reference §1.7). */
  async #admitConfigUpdate(name: DeviceName, key: DeviceKey): Promise<void> {
    if (!this.#configQuotas) return;
    const registry = await this.#store.getRegistry(name);
    const rateLimits = resolveRateLimits(registry?.rateLimits);
    const verdict = this.#configQuotas.admitConfigUpdate({ key, name, rateLimits });
    if (!verdict.ok) {
      throw new KeywayError('RESOURCE_EXHAUSTED', `${describeLimit(verdict.limit, rateLimits)} Try again in ${verdict.retryAfterSeconds} s.`);
    }
  }

  async sendCommandToDevice(name: DeviceName, binaryData: Buffer, subfolder?: string): Promise<void> {
    const data = checkCommandData(binaryData);
    const sub = checkSubfolder(subfolder);
    const { device } = await this.#resolve(name);
    const outcome = await this.#bus.sendCommand({
      device: keyOf(device),
      binaryData: data,
      ...(sub !== undefined ? { subfolder: sub } : {}),
    });
    switch (outcome) {
      case 'delivered':
        return;
      case 'not-connected':
        throw failedPrecondition(`Device '${device.name.device}' is not connected.`);
      case 'not-subscribed':
        throw failedPrecondition(`Device '${device.name.device}' is not subscribed to the commands topic.`);
    }
  }

  async listConfigVersions(name: DeviceName, numVersions?: number): Promise<readonly DeviceConfig[]> {
    const limit = checkCount(numVersions, 'numVersions');
    const { device } = await this.#resolve(name);
    return this.#store.listConfigVersions(device.numId, limit);
  }

  async listStates(name: DeviceName, numStates?: number): Promise<readonly DeviceState[]> {
    const limit = checkCount(numStates, 'numStates');
    const { device } = await this.#resolve(name);
    return this.#store.listStates(device.numId, limit);
  }

  // ---- device plane -------------------------------------------------------------------------

  async authenticateJwt(
    clientId: string,
    token: string,
    now: Date = this.#now(),
    protocol: DeviceProtocol = 'mqtt',
  ): Promise<DeviceAuthResult<JwtAuthenticatedDevice>> {
    const result = await authenticateDeviceJwt(this.#store, this.#logger, clientId, token, now, protocol);
    if (!result.ok) this.#logger.debug({ clientId: clientId.slice(0, 512), reason: result.reason }, 'device refused');
    return result;
  }

  async authenticateCertificate(
    clientId: string,
    chain: readonly Buffer[],
    now: Date = this.#now(),
    protocol: DeviceProtocol = 'mqtt',
  ): Promise<DeviceAuthResult<CertificateAuthenticatedDevice>> {
    return authenticateDeviceCertificate(
      { store: this.#store, logger: this.#logger, revocations: this.#revocations },
      clientId,
      chain,
      now,
      protocol,
    );
  }

  // ---- gateways (gateway-bindings.ts) ---------------------------------------------------------

  bindDeviceToGateway(registry: RegistryName, gatewayId: string, deviceId: string): Promise<void> {
    return this.#gateways.bind(registry, gatewayId, deviceId);
  }

  unbindDeviceFromGateway(registry: RegistryName, gatewayId: string, deviceId: string): Promise<void> {
    return this.#gateways.unbind(registry, gatewayId, deviceId);
  }

  authorizeGatewayDevice(
    gateway: AuthenticatedDevice,
    deviceId: string,
    token: string | undefined,
    protocol: DeviceProtocol,
    now: Date = this.#now(),
  ): Promise<DeviceAuthResult<GatewayDelegatedDevice>> {
    return this.#gateways.authorizeDevice(gateway, deviceId, token, protocol, now);
  }

  checkGatewayRelay(
    device: AuthenticatedDevice,
    gatewayId: string,
    now: Date = this.#now(),
  ): Promise<{ readonly ok: true } | { readonly ok: false; readonly reason: string }> {
    return this.#gateways.checkRelay(device, gatewayId, now);
  }

  // ---- device certificates (device-certificates.ts) -----------------------------------------

  registerDeviceCertificate(name: DeviceName, certificatePem: string, state?: 'ACTIVE' | 'INACTIVE'): Promise<DeviceCertificate> {
    return this.#certificates.register(name, certificatePem, state);
  }

  listDeviceCertificates(name: DeviceName): Promise<readonly DeviceCertificate[]> {
    return this.#certificates.list(name);
  }

  getDeviceCertificate(name: DeviceName, fingerprint: string): Promise<DeviceCertificate> {
    return this.#certificates.get(name, fingerprint);
  }

  updateDeviceCertificateState(
    name: DeviceName,
    fingerprint: string,
    state: string,
    updateMask: readonly string[],
  ): Promise<DeviceCertificate> {
    return this.#certificates.updateState(name, fingerprint, state, updateMask);
  }

  deleteDeviceCertificate(name: DeviceName, fingerprint: string): Promise<void> {
    return this.#certificates.delete(name, fingerprint);
  }

  recordHeartbeat(device: DeviceKey, at: Date): void {
    this.#activity.record(device, { lastHeartbeatTime: at });
  }

  recordEvent(device: DeviceKey, at: Date): void {
    this.#activity.record(device, { lastEventTime: at });
  }

  recordConfigSent(device: DeviceKey, _version: number, at: Date): void {
    this.#activity.record(device, { lastConfigSendTime: at });
  }

  recordError(device: DeviceKey, status: Status, at: Date): void {
    this.#activity.record(device, { lastError: { time: at, status: { code: status.code, message: status.message } } });
  }

  async recordState(device: DeviceKey, binaryData: Buffer, at: Date): Promise<void> {
    const name = deviceNameOfKey(device);
    if (!name) return;
    const data = checkBytes(binaryData, LIMITS.stateBytes, 'binaryData');
    await this.#store.insertState(name, data, at, LIMITS.statesKept);
  }

  async latestConfig(device: DeviceKey): Promise<{ readonly version: number; readonly binaryData: Buffer }> {
    const name = deviceNameOfKey(device);
    const config = name && (await this.#store.latestConfig(name));
    if (!config) throw notFound(`Device ${device} not found.`);
    return { version: config.version, binaryData: config.binaryData };
  }

  async recordConfigAck(device: DeviceKey, version: number, at: Date): Promise<void> {
    const name = deviceNameOfKey(device);
    if (name) await this.#store.ackConfig(name, version, at);
  }

  /** Writes pending activity and stops the timer. Safe to call more than once. */
  close(): Promise<void> {
    return this.#activity.close();
  }

  /** Writes pending activity timestamps now (close() does this too). */
  flush(): Promise<void> {
    return this.#activity.flush();
  }

  // ---- helpers ------------------------------------------------------------------------------

  /** A CA no longer on the registry vouches for nobody: connections through it end. */
  #announceRemovedCas(before: Registry, after: Registry): void {
    const kept = new Set(after.credentials.map((c) => caKeyOf(c)));
    const removed = [...new Set(before.credentials.map((c) => caKeyOf(c)))].filter((k) => !kept.has(k));
    if (removed.length === 0) return;
    this.#bus.publishCertificatesRevoked({ keys: removed, reason: 'CA certificate removed from the registry' });
    this.#logger.info({ registry: formatRegistry(after.name), removed: removed.length }, 'registry CA certificates removed');
  }

  /** MQTT switched off, or a kind of credential no longer accepted, must reach live connections. */
  #announceAccessChange(before: Registry, after: Registry): void {
    const was = mqttAccessOf(before);
    const access = mqttAccessOf(after);
    if (was.mqttEnabled === access.mqttEnabled && was.deviceAuthMethod === access.deviceAuthMethod) return;
    this.#bus.publishRegistryAccessChanged({ registry: formatRegistry(after.name), ...access });
    this.#logger.info({ registry: formatRegistry(after.name), ...access }, 'registry MQTT access changed');
  }

  async #resolve(name: DeviceName): Promise<DeviceRecord> {
    const record = await this.#store.findDevice(registryOf(name), deviceRefOf(name.device));
    if (!record) throw notFound(`Device ${formatDevice(name)} not found.`);
    return record;
  }

  /** Blocking or new credentials must reach live connections: they re-check against this. */
  #announceAuthChange(before: DeviceRecord, after: DeviceRecord): void {
    const blocked = !before.device.blocked && after.device.blocked;
    const credentialsChanged = credentialSignature(before.credentials) !== credentialSignature(after.credentials);
    if (!blocked && !credentialsChanged) return;
    const now = this.#now();
    this.#bus.publishRevoked({
      device: keyOf(after.device),
      reason: blocked ? 'blocked' : 'credentials-changed',
      blocked: after.device.blocked,
      credentialFingerprints: after.credentials.filter((c) => isUsable(c, now)).map((c) => c.fingerprint),
    });
  }
}

/** Absent or empty means no filter (proto3). */
function checkFilter(
  values: readonly string[] | undefined,
  field: string,
  valid: (v: string) => boolean,
): readonly string[] | undefined {
  if (values === undefined) return undefined;
  if (!Array.isArray(values)) throw fieldError(field, 'must be a list');
  if (values.length === 0) return undefined;
  if (values.length > LIST_FILTER_MAX) throw fieldError(field, `at most ${LIST_FILTER_MAX} values are allowed`);
  for (const v of values)
    if (typeof v !== 'string' || !valid(v)) throw fieldError(field, `'${String(v).slice(0, 64)}' is not a valid value`);
  return values;
}
