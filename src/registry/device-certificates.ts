/**
 * Device certificates (AWS IoT style, reference aws §1.4): X.509 certificates registered to one
 * device each, verified against the registry's CA certificates when registered, in states
 * ACTIVE / INACTIVE / REVOKED (permanent) / PENDING_ACTIVATION (set by Keyway only). A
 * certificate that stops being ACTIVE, or is deleted, is announced on the bus so that the broker
 * ends the connections made with it.
 */
import type { Logger } from 'pino';
import type { Bus } from '../bus/bus.js';
import { certificateKey } from '../domain/certificate-keys.js';
import { alreadyExists, failedPrecondition, fieldError, notFound } from '../domain/errors.js';
import { formatDevice, formatRegistry, registryOf, type DeviceName } from '../domain/names.js';
import { deviceRefOf } from './device-refs.js';
import type { CertificateState, Registry } from '../domain/resources.js';
import { parseCertificatePem, type ParsedCertificate } from '../identity/x509-certificate.js';
import { verifyClientChain, type ChainVerdict } from '../identity/x509-chain.js';
import type { NewDeviceCertificate, StoredDeviceCertificate } from '../store/device-certificates-store.js';
import type { DeviceCredentials, Store } from '../store/store.js';
import { parseUpdateMask } from './update-mask.js';
import { chainRevocation } from './chain-revocation.js';
import { RegistryRevocations } from './registry-revocations.js';
import type { RevocationSource } from '../domain/certificate-keys.js';

/** A device certificate as the admin API shows it. */
export interface DeviceCertificate {
  readonly device: DeviceName;
  /** SHA-256 (hex) of the DER: the certificate's id. */
  readonly fingerprint: string;
  readonly state: CertificateState;
  readonly certificatePem: string;
  readonly subject: string;
  readonly issuer: string;
  /** Normalized hex. */
  readonly serialNumber: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly createTime: Date;
  readonly updateTime: Date;
}

/** States an operator may ask for; PENDING_ACTIVATION is Keyway's own. */
export const SETTABLE_CERTIFICATE_STATES = ['ACTIVE', 'INACTIVE', 'REVOKED'] as const;
export type SettableCertificateState = (typeof SETTABLE_CERTIFICATE_STATES)[number];

export const CERTIFICATE_MASK_PATHS = ['state'] as const;

/** Leaf plus the intermediates needed to reach a registry CA. */
const MAX_PEM_BLOCKS = 5;
const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

export interface DeviceCertificatesDeps {
  readonly store: Store;
  readonly bus: Bus;
  readonly logger: Logger;
  readonly now: () => Date;
  /** Revocations beyond the registry's uploaded CRLs (Keyway's own PKI): a revoked certificate is not registered. */
  readonly revocations?: readonly RevocationSource[];
}

export const toDeviceCertificate = (c: StoredDeviceCertificate): DeviceCertificate => ({
  device: c.device,
  fingerprint: c.fingerprint,
  state: c.state,
  certificatePem: c.pem,
  subject: c.subject,
  issuer: c.issuer,
  serialNumber: c.serial,
  notBefore: c.notBefore,
  notAfter: c.notAfter,
  createTime: c.createTime,
  updateTime: c.updateTime,
});

/** The row a verified leaf becomes. */
export function newDeviceCertificate(verdict: Extract<ChainVerdict, { ok: true }>, state: CertificateState, at: Date): NewDeviceCertificate {
  const leaf = verdict.chain[0]!;
  const issuer = verdict.chain[1]!;
  return {
    fingerprint: leaf.fingerprint,
    issuerSpkiSha256: issuer.spkiSha256,
    serial: leaf.serial,
    subject: leaf.subject,
    issuer: leaf.issuer,
    notBefore: leaf.notBefore,
    notAfter: leaf.notAfter,
    pem: `-----BEGIN CERTIFICATE-----\n${(leaf.der.toString('base64').match(/.{1,64}/g) ?? []).join('\n')}\n-----END CERTIFICATE-----\n`,
    state,
    createdAt: at,
  };
}

const FINGERPRINT = /^[0-9a-f]{64}$/;

function checkFingerprint(fingerprint: unknown): string {
  if (typeof fingerprint !== 'string' || !FINGERPRINT.test(fingerprint.toLowerCase()))
    throw fieldError('fingerprint', 'must be the SHA-256 of the certificate, 64 hexadecimal digits');
  return fingerprint.toLowerCase();
}

export class DeviceCertificates {
  constructor(private readonly deps: DeviceCertificatesDeps) {}

  /**
   * Registers the first certificate of `certificatePem` to the device. Further PEM blocks may
   * carry the intermediates between it and a registry CA; they are used to verify, not stored.
   */
  async register(name: DeviceName, certificatePem: unknown, state: unknown = 'ACTIVE'): Promise<DeviceCertificate> {
    const field = 'deviceCertificate.certificatePem';
    if (state !== 'ACTIVE' && state !== 'INACTIVE') throw fieldError('deviceCertificate.state', 'must be ACTIVE or INACTIVE when registering');
    if (typeof certificatePem !== 'string') throw fieldError(field, 'must be PEM text');
    const blocks = certificatePem.match(PEM_BLOCK) ?? [];
    if (blocks.length === 0) parseCertificatePem(certificatePem, field); // says precisely what is wrong
    if (blocks.length > MAX_PEM_BLOCKS) throw fieldError(field, `holds ${blocks.length} certificates; at most ${MAX_PEM_BLOCKS} (the device's, then its intermediates)`);
    if (/PRIVATE KEY/i.test(certificatePem)) throw fieldError(field, 'contains a private key, which is never accepted; supply only the certificate');
    const parsed: ParsedCertificate[] = blocks.map((b, i) => parseCertificatePem(b, i === 0 ? field : `${field}[${i}]`));

    const { registry, device } = await this.#resolve(name);
    if (registry.credentials.length === 0)
      throw failedPrecondition(`Registry ${formatRegistry(registry.name)} has no CA certificates; add the CA that issued the device's certificate to its credentials first.`);
    const now = this.deps.now();
    const verdict = verifyClientChain(
      parsed.map((p) => p.der),
      registry.credentials.map((c) => c.publicKeyCertificate.certificate),
      now,
    );
    if (!verdict.ok) throw fieldError(field, `does not verify against the registry's CA certificates: ${verdict.reason}`);
    const revoked = await chainRevocation(verdict.chain, verdict.revocationKeys, [
      new RegistryRevocations(this.deps.store, registry.name),
      ...(this.deps.revocations ?? []),
    ]);
    if (revoked) throw failedPrecondition(`The certificate cannot be registered: ${revoked}.`);

    const row = newDeviceCertificate(verdict, state, now);
    switch (await this.deps.store.insertDeviceCertificate(device.numId, row)) {
      case 'created':
        break;
      case 'device-not-found':
        throw notFound(`Device ${formatDevice(name)} not found.`);
      case 'exists': {
        const existing = await this.deps.store.getDeviceCertificate(row.fingerprint);
        const mine = existing?.deviceNumId === device.numId;
        throw alreadyExists(`Certificate ${row.fingerprint} is already registered${mine ? ' to this device' : ' to another device; a certificate belongs to one device'}.`);
      }
    }
    this.deps.logger.info(
      { device: formatDevice(device.name), fingerprint: row.fingerprint, subject: row.subject, issuer: row.issuer, state },
      'device certificate registered',
    );
    return toDeviceCertificate(await this.#get(device, row.fingerprint));
  }

  async list(name: DeviceName): Promise<readonly DeviceCertificate[]> {
    const { device } = await this.#resolve(name);
    return (await this.deps.store.listDeviceCertificates(device.numId)).map(toDeviceCertificate);
  }

  async get(name: DeviceName, fingerprint: unknown): Promise<DeviceCertificate> {
    const fp = checkFingerprint(fingerprint);
    const { device } = await this.#resolve(name);
    return toDeviceCertificate(await this.#get(device, fp));
  }

  /** `updateMask` must be `state`; REVOKED is permanent and PENDING_ACTIVATION is not a target. */
  async updateState(name: DeviceName, fingerprint: unknown, state: unknown, updateMask: readonly string[]): Promise<DeviceCertificate> {
    const fp = checkFingerprint(fingerprint);
    const paths = parseUpdateMask(updateMask, CERTIFICATE_MASK_PATHS);
    if (!paths.has('state')) throw fieldError('updateMask', "must be 'state'");
    if (!(SETTABLE_CERTIFICATE_STATES as readonly unknown[]).includes(state))
      throw fieldError(
        'deviceCertificate.state',
        state === 'PENDING_ACTIVATION' ? 'PENDING_ACTIVATION is set by Keyway only' : 'must be ACTIVE, INACTIVE or REVOKED',
      );
    const target = state as SettableCertificateState;
    const { device } = await this.#resolve(name);
    await this.#get(device, fp);
    const result = await this.deps.store.updateDeviceCertificateState(fp, target, this.deps.now());
    switch (result.status) {
      case 'not-found':
        throw notFound(`Certificate ${fp} of device ${formatDevice(name)} not found.`);
      case 'revoked':
        throw failedPrecondition(`Certificate ${fp} is REVOKED, which is permanent; register a new certificate instead.`);
      case 'updated':
        if (result.before.state === 'ACTIVE' && result.after.state !== 'ACTIVE')
          this.#announce(result.after, `certificate ${result.after.state.toLowerCase()}`);
        if (result.before.state !== result.after.state)
          this.deps.logger.info(
            { device: formatDevice(result.after.device), fingerprint: fp, from: result.before.state, to: result.after.state },
            'device certificate state changed',
          );
        return toDeviceCertificate(result.after);
    }
  }

  async delete(name: DeviceName, fingerprint: unknown): Promise<void> {
    const fp = checkFingerprint(fingerprint);
    const { device } = await this.#resolve(name);
    await this.#get(device, fp);
    const deleted = await this.deps.store.deleteDeviceCertificate(fp);
    if (!deleted) throw notFound(`Certificate ${fp} of device ${formatDevice(name)} not found.`);
    // Whatever its state: a connection still open with it must not outlive its registration.
    this.#announce(deleted, 'certificate deleted');
    this.deps.logger.info({ device: formatDevice(deleted.device), fingerprint: fp }, 'device certificate deleted');
  }

  #announce(certificate: StoredDeviceCertificate, reason: string): void {
    this.deps.bus.publishCertificatesRevoked({ keys: [certificateKey(certificate.fingerprint)], reason });
  }

  async #resolve(name: DeviceName): Promise<{ registry: Registry; device: DeviceCredentials }> {
    const reg = registryOf(name);
    const registry = await this.deps.store.getRegistry(reg);
    if (!registry) throw notFound(`Registry ${formatRegistry(reg)} not found.`);
    const device = await this.deps.store.findDeviceCredentials(reg, deviceRefOf(name.device));
    if (!device) throw notFound(`Device ${formatDevice(name)} not found.`);
    return { registry, device };
  }

  /** The certificate, only if it is this device's: another device's is NOT_FOUND here. */
  async #get(device: DeviceCredentials, fingerprint: string): Promise<StoredDeviceCertificate> {
    const found = await this.deps.store.getDeviceCertificate(fingerprint);
    if (!found || found.deviceNumId !== device.numId)
      throw notFound(`Certificate ${fingerprint} of device ${formatDevice(device.name)} not found.`);
    return found;
  }
}
