/**
 * A device connection's policy (policy/): compiled once the device is authenticated, checked on
 * CONNECT (`connect`), on every PUBLISH and SUBSCRIBE, and on every delivery (`receive`), and
 * swapped when the bus says it changed. The broker reaches the stored policies only through the
 * narrow DevicePolicies interface (the composition root wires it to the PolicyService); without
 * one, a device runs under the built-in Cloud IoT Core grants alone, exactly the topics it always had.
 */
import { certificateFields, parseCertificateDer } from '../identity/x509-certificate.js';
import {
  certSubjectFromFields,
  CLOUD_IOT_CORE_POLICY,
  compilePolicies,
  type CertSubjectField,
  type CompiledPolicy,
} from '../policy/index.js';
import type { AuthenticatedDevice } from '../registry/device-manager.js';

export type CertSubject = Readonly<Partial<Record<CertSubjectField, string>>>;

export interface DevicePolicies {
  /**
   * The device's policy compiled for one connection (`certSubject` from the client certificate it
   * authenticated with, for `${cert.subject.*}`); undefined when the device no longer exists.
   */
  compile(device: AuthenticatedDevice, certSubject?: CertSubject): Promise<CompiledPolicy | undefined>;
}

/** No stored policies: the built-in grants, with no metadata (they use only the device id). */
export const BUILTIN_DEVICE_POLICIES: DevicePolicies = {
  compile: (device) =>
    Promise.resolve(
      compilePolicies([CLOUD_IOT_CORE_POLICY], {
        registryId: device.name.registry,
        deviceId: device.name.device,
        deviceNumId: device.numId,
        metadata: {},
      }),
    ),
};

/** The subject attributes of the leaf certificate (DER); empty when it does not parse (it verified, so it does). */
export function certSubjectOf(leaf: Buffer): CertSubject {
  try {
    return certSubjectFromFields(certificateFields(parseCertificateDer(leaf)));
  } catch {
    return {};
  }
}
