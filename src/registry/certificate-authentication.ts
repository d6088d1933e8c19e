/**
 * Device authentication by TLS client certificate (AWS IoT style, reference aws §1–2): the
 * client id names the device; the presented chain must end at one of the registry's CA
 * certificates, nothing in it may be revoked, and the leaf must be registered ACTIVE to that
 * very device, or be one of its `*_X509_PEM` credentials (Cloud IoT Core style), or — when the
 * anchoring CA carries a provisioning template — create the device on this first connection.
 * Every refusal has a reason and is logged with the certificate's fingerprint, subject, issuer.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { RevocationSource } from '../domain/certificate-keys.js';
import { isKeywayError } from '../domain/errors.js';
import { formatDevice, parseDevice, registryOf, type DeviceName } from '../domain/names.js';
import { deviceRefOf } from './device-refs.js';
import type { DeviceProtocol, Registry } from '../domain/resources.js';
import { certificateFields, certificatePemToDer, parseCertificateDer } from '../identity/x509-certificate.js';
import { verifyClientChain, type ChainCertificate, type ChainVerdict } from '../identity/x509-chain.js';
import type { DeviceCredentials, Store } from '../store/store.js';
import { newDeviceCertificate } from './device-certificates.js';
import type { CertificateAuthenticatedDevice, DeviceAuthResult } from './device-manager.js';
import { isUsable } from './device-rules.js';
import { randomNumId } from './num-id.js';
import { applyProvisioningTemplate, type AppliedTemplate } from './provisioning-template.js';
import { RegistryRevocations } from './registry-revocations.js';
import { chainRevocation } from './chain-revocation.js';
import { resolveRateLimits } from './device-quotas.js';
import { authMethodRefusal, gatewayIdentity, protocolRefusal } from './device-plane-rules.js';

type Result = DeviceAuthResult<CertificateAuthenticatedDevice>;
type Verified = Extract<ChainVerdict, { ok: true }>;

export interface CertificateAuthenticationDeps {
  readonly store: Store;
  readonly logger: Logger;
  /** Revocations beyond the registry's uploaded CRLs (Keyway's own PKI). */
  readonly revocations: readonly RevocationSource[];
}

/** Numeric ids are random; colliding this often means something else is wrong. */
const NUM_ID_ATTEMPTS = 5;
const X509_FORMATS = new Set(['RSA_X509_PEM', 'ES256_X509_PEM']);

export async function authenticateDeviceCertificate(
  deps: CertificateAuthenticationDeps,
  clientId: string,
  chain: readonly Buffer[],
  now: Date,
  protocol: DeviceProtocol = 'mqtt',
): Promise<Result> {
  let leaf: ChainCertificate | undefined;
  const refuse = (reason: string): Result => {
    deps.logger.info(
      {
        clientId: clientId.slice(0, 512),
        reason,
        ...(leaf
          ? { fingerprint: leaf.fingerprint, subject: leaf.subject, issuer: leaf.issuer, serial: leaf.serial }
          : { fingerprint: chain[0] ? createHash('sha256').update(chain[0]).digest('hex') : undefined }),
      },
      'device certificate refused',
    );
    return { ok: false, reason };
  };

  let name: DeviceName;
  try {
    name = parseDevice(clientId, 'clientId');
  } catch (e) {
    if (isKeywayError(e)) return refuse('malformed client id');
    throw e;
  }
  const registryName = registryOf(name);
  const registry = await deps.store.getRegistry(registryName);
  if (!registry) return refuse('unknown registry');
  const switchedOff = protocolRefusal(registry, protocol);
  if (switchedOff) return refuse(switchedOff);
  const methodRefused = authMethodRefusal(registry.deviceAuthMethod, 'certificate');
  if (methodRefused) return refuse(methodRefused);

  const verdict = verifyClientChain(
    chain,
    registry.credentials.map((c) => c.publicKeyCertificate.certificate),
    now,
  );
  if (!verdict.ok) {
    leaf = verdict.leaf;
    return refuse(verdict.reason);
  }
  leaf = verdict.chain[0]!;

  const revoked = await chainRevocation(verdict.chain, verdict.revocationKeys, [
    new RegistryRevocations(deps.store, registryName),
    ...deps.revocations,
  ]);
  if (revoked) return refuse(revoked);

  const device = await deps.store.findDeviceCredentials(registryName, deviceRefOf(name.device));
  const registered = await deps.store.getDeviceCertificate(verdict.leafFingerprint);
  if (registered) {
    if (!device || registered.deviceNumId !== device.numId) return refuse('the certificate is registered to another device');
    if (registered.state !== 'ACTIVE') return refuse(`the certificate is ${registered.state}`);
    if (device.blocked) return refuse('device is blocked');
    return { ok: true, device: authenticated(device, verdict, false, registry) };
  }

  if (device) {
    const credential = matchingCredential(device, verdict.chain[0]!, now);
    if (credential !== undefined) {
      if (device.blocked) return refuse('device is blocked');
      return { ok: true, device: { ...authenticated(device, verdict, false, registry), credentialFingerprint: credential } };
    }
  }

  const template = registry.credentials[verdict.anchorIndex]?.provisioningTemplate;
  if (!template) return refuse(device ? 'the certificate is not registered to the device' : 'unknown device, and the CA allows no just-in-time provisioning');
  const applied = applyProvisioningTemplate(template, certificateFields(parseCertificateDer(verdict.chain[0]!.der)));
  if (!applied.ok) return refuse(`just-in-time provisioning refused: ${applied.reason}`);
  if (applied.deviceId !== name.device)
    return refuse(`the certificate provisions device '${applied.deviceId}', but the client id names '${name.device}'`);
  if (device)
    return refuse(`device '${name.device}' exists but this certificate is not registered to it; register the certificate to the device`);

  const outcome = await provision(deps, registry, applied, verdict, now);
  if (typeof outcome === 'string') return refuse(outcome);
  if (outcome.created)
    deps.logger.info(
      { device: formatDevice(outcome.device.name), numId: outcome.device.numId, fingerprint: leaf.fingerprint, subject: leaf.subject },
      'device created by just-in-time provisioning',
    );
  return { ok: true, device: authenticated(outcome.device, verdict, outcome.created, registry) };
}

function authenticated(device: DeviceCredentials, verdict: Verified, provisioned: boolean, registry: Registry): CertificateAuthenticatedDevice {
  return {
    method: 'certificate',
    key: formatDevice(device.name),
    name: device.name,
    numId: device.numId,
    certificateFingerprint: verdict.leafFingerprint,
    revocationKeys: verdict.revocationKeys,
    notAfter: verdict.notAfter,
    provisioned,
    ...gatewayIdentity(device),
    rateLimits: resolveRateLimits(registry.rateLimits),
  };
}

/** The SPKI fingerprint of a usable `*_X509_PEM` credential whose certificate is the leaf. */
function matchingCredential(device: DeviceCredentials, leaf: ChainCertificate, now: Date): string | undefined {
  for (const credential of device.credentials) {
    if (!X509_FORMATS.has(credential.publicKey.format) || !isUsable(credential, now)) continue;
    try {
      if (certificatePemToDer(credential.publicKey.key, 'credential').equals(leaf.der)) return credential.fingerprint;
    } catch {
      // A stored credential that no longer parses cannot match.
    }
  }
  return undefined;
}

/**
 * Creates the device with its certificate ACTIVE in one transaction; `created` false when a
 * concurrent first connection of the same device did. A string is a refusal reason.
 */
async function provision(
  deps: CertificateAuthenticationDeps,
  registry: Registry,
  applied: Extract<AppliedTemplate, { ok: true }>,
  verdict: Verified,
  now: Date,
): Promise<{ readonly device: DeviceCredentials; readonly created: boolean } | string> {
  const name: DeviceName = { ...registry.name, device: applied.deviceId };
  for (let attempt = 1; attempt <= NUM_ID_ATTEMPTS; attempt++) {
    const result = await deps.store.insertDevice({
      name,
      numId: randomNumId(),
      credentials: [],
      blocked: false,
      metadata: applied.metadata,
      logLevel: 'LOG_LEVEL_UNSPECIFIED',
      gatewayType: applied.gatewayType,
      gatewayAuthMethod: 'GATEWAY_AUTH_METHOD_UNSPECIFIED',
      configData: applied.configData,
      createdAt: now,
      certificates: [newDeviceCertificate(verdict, 'ACTIVE', now)],
    });
    switch (result) {
      case 'created': {
        const created = await deps.store.findDeviceCredentials(registry.name, { id: applied.deviceId });
        return created ? { device: created, created: true } : 'just-in-time provisioning failed: the device vanished after its creation';
      }
      case 'registry-not-found':
        return 'unknown registry';
      case 'id-taken':
      case 'certificate-taken': {
        // A concurrent first connection of the same device may have provisioned it: admit that.
        const device = await deps.store.findDeviceCredentials(registry.name, { id: applied.deviceId });
        const registered = await deps.store.getDeviceCertificate(verdict.leafFingerprint);
        if (device && registered?.deviceNumId === device.numId && registered.state === 'ACTIVE' && !device.blocked)
          return { device, created: false };
        return 'just-in-time provisioning failed: the device or the certificate was created meanwhile by another connection';
      }
      case 'num-id-taken':
        continue;
    }
  }
  return 'just-in-time provisioning failed: no unique numeric id could be allocated';
}
