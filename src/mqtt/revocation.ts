/**
 * Revocation of live device connections (bus `onRevoked`): a deleted or blocked device, or one
 * whose connection was authenticated with a credential no longer usable, is disconnected at once.
 */
import { performance } from 'node:perf_hooks';
import type { CertificatesRevoked, DeviceKey, DeviceRevoked, RegistryAccessChanged, RegistryKey } from '../bus/bus.js';
import { formatRegistry } from '../domain/names.js';
import type { AuthenticatedDevice, GatewayDelegatedDevice } from '../registry/device-manager.js';
import { accessRefusal } from './registry-access.js';

/**
 * Whether `event` ends a connection of `device` (or its attachment to a gateway): always when the
 * device is deleted or blocked; when its credentials changed, if the credential it authenticated
 * with is no longer usable (a registered device certificate is not a credential: its own state
 * governs it; a device attached by association alone presented none).
 */
export function revokes(event: DeviceRevoked, device: AuthenticatedDevice | GatewayDelegatedDevice): boolean {
  if (event.reason === 'deleted' || event.blocked) return true;
  const fingerprint = device.method === 'gateway' ? device.token?.credentialFingerprint : device.credentialFingerprint;
  return fingerprint !== undefined && !event.credentialFingerprints.includes(fingerprint);
}

interface Recent {
  readonly serial: number;
  readonly at: number;
  readonly event: DeviceRevoked;
}

interface RecentKey {
  readonly serial: number;
  readonly at: number;
}

interface RecentAccess {
  readonly serial: number;
  readonly at: number;
  readonly event: RegistryAccessChanged;
}

/**
 * Closes the gap between checking a token and registering its connection: a revocation that
 * arrives while a device's authentication is in flight has no connection to close yet. Recent
 * revocations are kept for as long as an authentication may take (the connect timeout), and each
 * authentication re-checks the ones that arrived after it began. Revoked certificates
 * (`CertificatesRevoked`) are kept the same way, by revocation key, for certificate connections,
 * and registries' access changes (`RegistryAccessChanged`), by registry, the latest of each.
 */
export class RevocationWindow {
  readonly #recent = new Map<DeviceKey, Recent>();
  readonly #recentKeys = new Map<string, RecentKey>();
  readonly #recentAccess = new Map<RegistryKey, RecentAccess>();
  #serial = 0;

  constructor(readonly windowMs: number) {}

  /** Call before authenticating; pass the result to revokedSince afterwards. */
  mark(): number {
    return this.#serial;
  }

  record(event: DeviceRevoked): void {
    const at = performance.now();
    this.#prune(at);
    // Delete first so the map stays ordered by arrival, oldest first.
    this.#recent.delete(event.device);
    this.#recent.set(event.device, { serial: ++this.#serial, at, event });
  }

  recordCertificates(event: CertificatesRevoked): void {
    const at = performance.now();
    this.#prune(at);
    const serial = ++this.#serial;
    for (const key of event.keys) {
      this.#recentKeys.delete(key);
      this.#recentKeys.set(key, { serial, at });
    }
  }

  recordRegistryAccess(event: RegistryAccessChanged): void {
    const at = performance.now();
    this.#prune(at);
    this.#recentAccess.delete(event.registry);
    this.#recentAccess.set(event.registry, { serial: ++this.#serial, at, event });
  }

  revokedSince(mark: number, device: AuthenticatedDevice | GatewayDelegatedDevice): boolean {
    const recent = this.#recent.get(device.key);
    if (recent !== undefined && recent.serial > mark && revokes(recent.event, device)) return true;
    if (this.#recentAccess.size > 0) {
      const access = this.#recentAccess.get(formatRegistry(device.name));
      if (access !== undefined && access.serial > mark && accessRefusal(access.event, device) !== undefined) return true;
    }
    if (device.method !== 'certificate') return false;
    return device.revocationKeys.some((key) => {
      const revoked = this.#recentKeys.get(key);
      return revoked !== undefined && revoked.serial > mark;
    });
  }

  /** Devices, certificate keys and registries remembered. */
  get size(): number {
    return this.#recent.size + this.#recentKeys.size + this.#recentAccess.size;
  }

  #prune(now: number): void {
    for (const [key, recent] of this.#recent) {
      if (now - recent.at <= this.windowMs) break;
      this.#recent.delete(key);
    }
    for (const [key, recent] of this.#recentKeys) {
      if (now - recent.at <= this.windowMs) break;
      this.#recentKeys.delete(key);
    }
    for (const [key, recent] of this.#recentAccess) {
      if (now - recent.at <= this.windowMs) break;
      this.#recentAccess.delete(key);
    }
  }
}
