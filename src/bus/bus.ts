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
  /** Asks whichever node holds the device's connection to deliver a command. */
  sendCommand(request: CommandRequest): Promise<CommandOutcome>;
  /** Registers the node's command handler (the broker); returns an unregister function. */
  handleCommands(handler: (request: CommandRequest) => Promise<CommandOutcome>): () => void;
  close(): Promise<void>;
}
