/**
 * A device connection's policy (policy/), or a gateway attachment's: compiled once the device is
 * authenticated (attached), checked on CONNECT (`connect`; the attach), on every PUBLISH and
 * SUBSCRIBE, and on every delivery (`receive`), and swapped when the bus says it changed. The broker reaches the stored policies only through the
 * narrow DevicePolicies interface (the composition root wires it to the PolicyService); without
 * one, a device runs under the built-in Cloud IoT Core grants alone, exactly the topics it always had.
 */
import { certificateFields, parseCertificateDer } from '../identity/x509-certificate.js';
import {
  certSubjectFromFields,
  CLOUD_IOT_CORE_POLICY,
  compilePolicyTemplate,
  type CertSubjectField,
  type CompiledPolicy,
} from '../policy/index.js';
import type { AuthenticatedDevice } from '../registry/device-manager.js';

export type CertSubject = Readonly<Partial<Record<CertSubjectField, string>>>;

/** A client certificate's subject, read only when a policy asks for it (see certSubjectOf). */
export type CertSubjectSource = CertSubject | (() => CertSubject);

/** What compiling a policy needs of a device: a connection's or a gateway attachment's. */
export type PolicyDevice = Pick<AuthenticatedDevice, 'numId' | 'name'>;

export interface DevicePolicies {
  /**
   * The device's policy compiled for one connection or gateway attachment (`certSubject` from the
   * client certificate it authenticated with, for `${cert.subject.*}`); undefined when the device
   * no longer exists.
   */
  compile(device: PolicyDevice, certSubject?: CertSubjectSource): Promise<CompiledPolicy | undefined>;
}

/** One compiled form for every connection: each keeps only its device id. */
const BUILTIN_TEMPLATE = compilePolicyTemplate([CLOUD_IOT_CORE_POLICY]);

/** The built-in grants for `device`, with no metadata (they use only the device id). */
export const builtinPolicy = (device: PolicyDevice): CompiledPolicy =>
  BUILTIN_TEMPLATE.bind({
    registryId: device.name.registry,
    deviceId: device.name.device,
    deviceNumId: device.numId,
    metadata: {},
  });

/** No stored policies: the built-in grants alone. */
export const BUILTIN_DEVICE_POLICIES: DevicePolicies = {
  compile: (device) => Promise.resolve(builtinPolicy(device)),
};

/**
 * The subject attributes of the leaf certificate (DER), parsed on first use: parsing a
 * certificate's names costs more than the rest of a policy, and most policies never read them.
 * Empty when it does not parse (it verified, so it does).
 */
export function certSubjectOf(leaf: Buffer): () => CertSubject {
  let der: Buffer | undefined = leaf;
  let subject: CertSubject | undefined;
  return () => {
    if (subject === undefined) {
      try {
        subject = certSubjectFromFields(certificateFields(parseCertificateDer(der as Buffer)));
      } catch {
        subject = {};
      }
      der = undefined;
    }
    return subject;
  };
}
