/**
 * Gateways (reference §1.10): binding devices to gateways of their registry, the gateway list
 * options of devices.list, and the device-plane decisions — may a gateway act for a device
 * (MQTT attach, HTTP `gatewayInfo.delegatedDeviceId`), may a device say it relays through a
 * gateway (HTTP `gatewayInfo.gatewayId`). Changes are announced on the bus (GatewayBindingChanged)
 * after they are committed, so that live gateway connections drop what they may no longer do.
 */
import type { Logger } from 'pino';
import type { Bus, DeviceKey } from '../bus/bus.js';
import { failedPrecondition, fieldError, KeywayError, notFound } from '../domain/errors.js';
import { formatDevice, formatRegistry, isNumId, isResourceId, registryOf, type DeviceName, type RegistryName } from '../domain/names.js';
import { LIMITS, type Device, type DeviceProtocol, type GatewayAuthMethod } from '../domain/resources.js';
import type { DeviceCredentials, ListDevicesQuery, Store } from '../store/store.js';
import { deviceRefOf } from './device-refs.js';
import type {
  AuthenticatedDevice,
  DeviceAuthResult,
  GatewayDelegatedDevice,
  GatewayListOptions,
} from './device-manager.js';
import { authenticateDeviceJwt } from './jwt-authentication.js';

export interface GatewayBindingsDeps {
  readonly store: Store;
  readonly bus: Bus;
  readonly logger: Logger;
  readonly now: () => Date;
  /** Records on `device` the gateway it came through (gatewayConfig.lastAccessedGateway*), written behind. */
  readonly recordAccess: (device: DeviceKey, gatewayId: string, at: Date) => void;
}

/** The part of a devices.list query that gatewayListOptions sets. */
export type GatewayListQuery = Pick<ListDevicesQuery, 'gatewayType' | 'boundToGateway' | 'gatewaysOfDevice'>;

type Refusal = { readonly ok: false; readonly reason: string };
const refuse = (reason: string): Refusal => ({ ok: false, reason });

const isDeviceRef = (id: unknown): id is string => typeof id === 'string' && (isResourceId(id) || isNumId(id));
const keyOf = (d: DeviceCredentials | Device): DeviceKey => formatDevice(d.name);

const needsAssociation = (m: GatewayAuthMethod): boolean => m === 'ASSOCIATION_ONLY' || m === 'ASSOCIATION_AND_DEVICE_AUTH_TOKEN';
const needsToken = (m: GatewayAuthMethod): boolean => m === 'DEVICE_AUTH_TOKEN_ONLY' || m === 'ASSOCIATION_AND_DEVICE_AUTH_TOKEN';

export class GatewayBindings {
  constructor(private readonly deps: GatewayBindingsDeps) {}

  // ---- admin ------------------------------------------------------------------------------------

  async bind(registry: RegistryName, gatewayId: string, deviceId: string): Promise<void> {
    const { reg, gateway, device } = await this.#resolvePair(registry, gatewayId, deviceId);
    if (gateway.gatewayConfig.gatewayType !== 'GATEWAY')
      throw fieldError('gatewayId', `device '${gateway.name.device}' is not a gateway (its gatewayConfig.gatewayType is not GATEWAY)`);
    if (device.gatewayConfig.gatewayType === 'GATEWAY')
      throw fieldError('deviceId', `device '${device.name.device}' is a gateway; a gateway cannot be bound to another gateway`);
    const result = await this.deps.store.bindDeviceToGateway(reg, gateway.numId, device.numId, this.deps.now(), {
      devicesPerGateway: LIMITS.devicesBoundPerGateway,
      gatewaysPerDevice: LIMITS.gatewaysPerDevice,
    });
    switch (result) {
      case 'already-bound':
        return;
      case 'bound':
        this.deps.bus.publishGatewayBindingChanged({ gateway: keyOf(gateway), device: keyOf(device), bound: true });
        this.deps.logger.info({ gateway: keyOf(gateway), device: keyOf(device) }, 'device bound to gateway');
        return;
      case 'gateway-full':
        throw new KeywayError(
          'RESOURCE_EXHAUSTED',
          `Gateway '${gateway.name.device}' already has ${LIMITS.devicesBoundPerGateway} devices bound, the most a gateway may have.`,
        );
      case 'device-full':
        throw new KeywayError(
          'RESOURCE_EXHAUSTED',
          `Device '${device.name.device}' is already bound to ${LIMITS.gatewaysPerDevice} gateways, the most a device may be.`,
        );
      // Changed between our reads and the store's transaction.
      case 'gateway-not-found':
        throw notFound(`Gateway ${formatDevice({ ...reg, device: gatewayId })} not found.`);
      case 'device-not-found':
        throw notFound(`Device ${formatDevice({ ...reg, device: deviceId })} not found.`);
      case 'not-a-gateway':
        throw fieldError('gatewayId', `device '${gateway.name.device}' is not a gateway`);
      case 'device-is-gateway':
        throw fieldError('deviceId', `device '${device.name.device}' is a gateway; a gateway cannot be bound to another gateway`);
    }
  }

  async unbind(registry: RegistryName, gatewayId: string, deviceId: string): Promise<void> {
    const { reg, gateway, device } = await this.#resolvePair(registry, gatewayId, deviceId);
    if (!(await this.deps.store.unbindDeviceFromGateway(reg, gateway.numId, device.numId)))
      throw notFound(`Device '${device.name.device}' is not bound to gateway '${gateway.name.device}'.`);
    this.deps.bus.publishGatewayBindingChanged({ gateway: keyOf(gateway), device: keyOf(device), bound: false });
    this.deps.logger.info({ gateway: keyOf(gateway), device: keyOf(device) }, 'device unbound from gateway');
  }

  /** The store filter for devices.list's `gatewayListOptions` (a oneof; absent = no filter). */
  async listQuery(registry: RegistryName, options: GatewayListOptions | undefined): Promise<GatewayListQuery> {
    if (options === undefined) return {};
    const set = Object.entries(options).filter(([, v]) => v !== undefined && v !== '');
    if (set.length > 1)
      throw new KeywayError(
        'INVALID_ARGUMENT',
        `gatewayListOptions is a oneof: give only one of gatewayType, associationsGatewayId and associationsDeviceId, not ${set.map(([k]) => k).join(' and ')}.`,
        set.map(([k]) => ({ field: `gatewayListOptions.${k}`, description: 'only one gateway list option may be given' })),
      );
    const [entry] = set;
    if (!entry) return {};
    const [field, value] = entry;
    switch (field) {
      case 'gatewayType':
        if (value === 'GATEWAY' || value === 'NON_GATEWAY') return { gatewayType: value };
        if (value === 'GATEWAY_TYPE_UNSPECIFIED') return {};
        throw fieldError('gatewayListOptions.gatewayType', `'${String(value).slice(0, 64)}' is not GATEWAY or NON_GATEWAY`);
      case 'associationsGatewayId': {
        const gateway = await this.#find(registry, 'gatewayListOptions.associationsGatewayId', value, 'Gateway');
        return { boundToGateway: gateway.numId };
      }
      case 'associationsDeviceId': {
        const device = await this.#find(registry, 'gatewayListOptions.associationsDeviceId', value, 'Device');
        return { gatewaysOfDevice: device.numId };
      }
      default:
        throw fieldError(`gatewayListOptions.${field}`, 'is not a gateway list option');
    }
  }

  /**
   * After a device changed: a gateway whose auth method changed loses every attachment (the
   * devices may attach again under the new method).
   */
  announceChange(before: Device, after: Device): void {
    if (after.gatewayConfig.gatewayType !== 'GATEWAY') return;
    if (before.gatewayConfig.gatewayAuthMethod === after.gatewayConfig.gatewayAuthMethod) return;
    this.deps.bus.publishGatewayBindingChanged({ gateway: keyOf(after), bound: false });
  }

  /** Before deleting a device: the gateways it is bound to (its bindings go with it). */
  async gatewaysOf(device: Device): Promise<DeviceKey[]> {
    if (device.gatewayConfig.gatewayType === 'GATEWAY') return [];
    const bindings = await this.deps.store.listGatewayBindings({ deviceNumId: device.numId });
    return bindings.map((b) => formatDevice(b.gateway));
  }

  /** After deleting a device: its bindings are gone, and a deleted gateway's attachments end. */
  announceDeleted(device: Device, gateways: readonly DeviceKey[]): void {
    const key = keyOf(device);
    for (const gateway of gateways) this.deps.bus.publishGatewayBindingChanged({ gateway, device: key, bound: false });
    if (device.gatewayConfig.gatewayType === 'GATEWAY') this.deps.bus.publishGatewayBindingChanged({ gateway: key, bound: false });
  }

  // ---- device plane -----------------------------------------------------------------------------

  async authorizeDevice(
    gateway: AuthenticatedDevice,
    deviceId: string,
    token: string | undefined,
    protocol: DeviceProtocol,
    now: Date,
  ): Promise<DeviceAuthResult<GatewayDelegatedDevice>> {
    const result = await this.#authorizeDevice(gateway, deviceId, token, protocol, now);
    if (!result.ok)
      this.deps.logger.debug(
        { gateway: gateway.key, device: String(deviceId).slice(0, 256), protocol, reason: result.reason },
        'gateway refused to act for device',
      );
    return result;
  }

  async #authorizeDevice(
    gateway: AuthenticatedDevice,
    deviceId: string,
    token: string | undefined,
    protocol: DeviceProtocol,
    now: Date,
  ): Promise<DeviceAuthResult<GatewayDelegatedDevice>> {
    const registry = registryOf(gateway.name);
    // The gateway as it is now, not as it was when it connected: blocked, or its method changed.
    const current = await this.deps.store.findDeviceCredentials(registry, { numId: gateway.numId });
    if (!current) return refuse('the gateway no longer exists');
    if (current.gatewayConfig.gatewayType !== 'GATEWAY') return refuse('the connected device is not a gateway');
    if (current.blocked) return refuse('the gateway is blocked');
    const method = current.gatewayConfig.gatewayAuthMethod;
    if (method === 'GATEWAY_AUTH_METHOD_UNSPECIFIED')
      return refuse('the gateway has no gateway auth method (GATEWAY_AUTH_METHOD_UNSPECIFIED): it may act for no device');

    if (!isDeviceRef(deviceId)) return refuse('malformed device id');
    const device = await this.deps.store.findDeviceCredentials(registry, deviceRefOf(deviceId));
    if (!device) return refuse('unknown device');
    if (device.gatewayConfig.gatewayType === 'GATEWAY') return refuse('the device is a gateway; a gateway cannot act for a gateway');
    if (device.blocked) return refuse('device is blocked');

    const byAssociation = needsAssociation(method);
    if (byAssociation && !(await this.deps.store.isBoundToGateway(current.numId, device.numId)))
      return refuse(`the device is not bound to the gateway (gateway auth method ${method})`);
    let verifiedToken: GatewayDelegatedDevice['token'];
    if (needsToken(method)) {
      if (!token) return refuse(`the device's own token is required (gateway auth method ${method})`);
      const verified = await authenticateDeviceJwt(this.deps.store, this.deps.logger, keyOf(device), token, now, protocol);
      if (!verified.ok) return refuse(`device token refused: ${verified.reason}`);
      if (verified.device.numId !== device.numId) return refuse('device token refused: it names another device');
      verifiedToken = { credentialFingerprint: verified.device.credentialFingerprint, expiresAt: verified.device.tokenExpiresAt };
    }

    this.deps.recordAccess(keyOf(device), current.name.device, now);
    return {
      ok: true,
      device: {
        method: 'gateway',
        key: keyOf(device),
        name: device.name,
        numId: device.numId,
        gatewayKey: keyOf(current),
        byAssociation,
        ...(verifiedToken ? { token: verifiedToken } : {}),
        // Same registry as the gateway: the limits read when it authenticated.
        rateLimits: gateway.rateLimits,
      },
    };
  }

  async checkRelay(device: AuthenticatedDevice, gatewayId: string, now: Date): Promise<{ readonly ok: true } | Refusal> {
    const result = await this.#checkRelay(device, gatewayId, now);
    if (!result.ok)
      this.deps.logger.debug(
        { device: device.key, gateway: String(gatewayId).slice(0, 256), reason: result.reason },
        'relay through gateway refused',
      );
    return result;
  }

  async #checkRelay(device: AuthenticatedDevice, gatewayId: string, now: Date): Promise<{ readonly ok: true } | Refusal> {
    if (device.gateway) return refuse('the device is a gateway; a gateway cannot relay through a gateway');
    if (!isDeviceRef(gatewayId)) return refuse('malformed gateway id');
    const gateway = await this.deps.store.findDeviceCredentials(registryOf(device.name), deviceRefOf(gatewayId));
    if (!gateway) return refuse('unknown gateway');
    if (gateway.gatewayConfig.gatewayType !== 'GATEWAY') return refuse(`device '${gateway.name.device}' is not a gateway`);
    if (gateway.blocked) return refuse('the gateway is blocked');
    const method = gateway.gatewayConfig.gatewayAuthMethod;
    if (method === 'GATEWAY_AUTH_METHOD_UNSPECIFIED')
      return refuse('the gateway has no gateway auth method (GATEWAY_AUTH_METHOD_UNSPECIFIED): no device may use it');
    if (needsAssociation(method) && !(await this.deps.store.isBoundToGateway(gateway.numId, device.numId)))
      return refuse(`the device is not bound to the gateway (gateway auth method ${method})`);
    this.deps.recordAccess(device.key, gateway.name.device, now);
    return { ok: true };
  }

  // ---- helpers ----------------------------------------------------------------------------------

  async #resolvePair(
    registry: RegistryName,
    gatewayId: string,
    deviceId: string,
  ): Promise<{ reg: RegistryName; gateway: DeviceCredentials; device: DeviceCredentials }> {
    const reg = registryOf(registry);
    if (!isDeviceRef(gatewayId)) throw fieldError('gatewayId', `'${String(gatewayId).slice(0, 64)}' is not a device id or numeric id`);
    if (!isDeviceRef(deviceId)) throw fieldError('deviceId', `'${String(deviceId).slice(0, 64)}' is not a device id or numeric id`);
    if (!(await this.deps.store.getRegistry(reg))) throw notFound(`Registry ${formatRegistry(reg)} not found.`);
    const gateway = await this.#find(reg, 'gatewayId', gatewayId, 'Gateway');
    const device = await this.#find(reg, 'deviceId', deviceId, 'Device');
    return { reg, gateway, device };
  }

  async #find(registry: RegistryName, field: string, id: unknown, what: 'Gateway' | 'Device'): Promise<DeviceCredentials> {
    if (!isDeviceRef(id)) throw fieldError(field, `'${String(id).slice(0, 64)}' is not a device id or numeric id`);
    const found = await this.deps.store.findDeviceCredentials(registry, deviceRefOf(id));
    if (!found) throw notFound(`${what} ${formatDevice({ ...registry, device: id })} not found.`);
    return found;
  }
}

/** For deleteDevice: a gateway that still has devices bound stays (as in Cloud IoT Core). */
export function gatewayHasBoundDevices(name: DeviceName): KeywayError {
  return failedPrecondition(
    `Gateway ${formatDevice(name)} still has devices bound to it; unbind them first.`,
  );
}
