/**
 * Live effects on connected devices. The device manager announces what changed; the broker,
 * which holds the connections, acts on it. In-process by default; a NATS implementation of the
 * same interface spreads it across nodes.
 *
 * Devices are keyed by their full resource path with the device *id* (never the numeric id):
 * `projects/{p}/locations/{l}/registries/{r}/devices/{id}`.
 */
export type DeviceKey = string;

export interface ConfigPushed {
  readonly device: DeviceKey;
  readonly version: number;
  readonly binaryData: Buffer;
}

/**
 * A device's authentication-relevant facts changed (blocked, credentials replaced, deleted).
 * Connections of that device must re-check themselves against `credentialFingerprints`
 * (SHA-256 of each still-usable credential's SubjectPublicKeyInfo, hex) and `blocked`.
 */
export interface DeviceRevoked {
  readonly device: DeviceKey;
  readonly reason: 'blocked' | 'credentials-changed' | 'deleted';
  readonly blocked: boolean;
  readonly credentialFingerprints: readonly string[];
}

/**
 * Certificates are no longer trusted: a device certificate left ACTIVE, a CA was revoked or
 * removed from a registry, or a CRL listing them was uploaded. Every live connection whose
 * verified chain holds one of `keys` (`cert:{sha256}` or `serial:{issuerSpkiSha256}/{serial}`,
 * domain/certificate-keys) ends.
 */
export interface CertificatesRevoked {
  readonly keys: readonly string[];
  /** For the log: what made them untrusted. */
  readonly reason: string;
}

/** A registry's full resource path: `projects/{p}/locations/{l}/registries/{r}`. */
export type RegistryKey = string;

/**
 * What devices may do changed: a policy version became the default of an attached policy, a
 * policy was attached or detached, or a device's metadata (its `type` label, its variables)
 * changed. Live connections of the named devices (every device of the registry when `devices`
 * is absent) recompile their policy.
 */
export interface PoliciesChanged {
  readonly registry: RegistryKey;
  readonly devices?: readonly DeviceKey[];
}

/**
 * A service account's rights changed: a key was revoked (`keyId`), or the account was disabled,
 * deleted or had its role bindings changed (no `keyId`: every key). Live backend connections of
 * the account (with that key) end; they may log in again under what is now granted.
 */
export interface ServiceIdentityChanged {
  readonly project: string;
  readonly account: string;
  readonly keyId?: string;
  readonly reason: 'key-revoked' | 'disabled' | 'deleted' | 'bindings-changed';
}

/**
 * A gateway's associations changed. With `device`: that device was bound (`bound` true) or
 * unbound; a gateway connection that has it attached by association (GatewayDelegatedDevice
 * `byAssociation`) detaches it at once when unbound. Without `device`: the gateway's auth method
 * changed (or it was deleted), and every attachment of its connection ends; the devices may attach again.
 */
export interface GatewayBindingChanged {
  readonly gateway: DeviceKey;
  readonly device?: DeviceKey;
  readonly bound: boolean;
}

/**
 * Which of a registry's devices may be connected over MQTT changed: MQTT was switched on or off
 * (`mqttConfig.mqttEnabledState`), or the credentials it accepts (`deviceAuthMethod`, an
 * unspecified one meaning both). Published only when one of them changed. Live MQTT connections
 * of the registry's devices that it no longer admits end; devices attached to its gateways with
 * what it no longer accepts are detached.
 */
export interface RegistryAccessChanged {
  readonly registry: RegistryKey;
  readonly mqttEnabled: boolean;
  readonly deviceAuthMethod: 'JWT_OR_CERTIFICATE' | 'JWT_ONLY' | 'CERTIFICATE_ONLY';
}

export interface CommandRequest {
  readonly device: DeviceKey;
  readonly subfolder?: string;
  readonly binaryData: Buffer;
}

/** What became of a command: only a connected device subscribed to its commands topic gets it. */
export type CommandOutcome = 'delivered' | 'not-connected' | 'not-subscribed';

export interface Bus {
  publishConfig(event: ConfigPushed): void;
  onConfig(listener: (event: ConfigPushed) => void): () => void;
  publishRevoked(event: DeviceRevoked): void;
  onRevoked(listener: (event: DeviceRevoked) => void): () => void;
  publishCertificatesRevoked(event: CertificatesRevoked): void;
  onCertificatesRevoked(listener: (event: CertificatesRevoked) => void): () => void;
  publishPoliciesChanged(event: PoliciesChanged): void;
  onPoliciesChanged(listener: (event: PoliciesChanged) => void): () => void;
  publishServiceIdentityChanged(event: ServiceIdentityChanged): void;
  onServiceIdentityChanged(listener: (event: ServiceIdentityChanged) => void): () => void;
  publishGatewayBindingChanged(event: GatewayBindingChanged): void;
  onGatewayBindingChanged(listener: (event: GatewayBindingChanged) => void): () => void;
  publishRegistryAccessChanged(event: RegistryAccessChanged): void;
  onRegistryAccessChanged(listener: (event: RegistryAccessChanged) => void): () => void;
  /** Asks whichever node holds the device's connection to deliver a command. */
  sendCommand(request: CommandRequest): Promise<CommandOutcome>;
  /** Registers the node's command handler (the broker); returns an unregister function. */
  handleCommands(handler: (request: CommandRequest) => Promise<CommandOutcome>): () => void;
  close(): Promise<void>;
}
