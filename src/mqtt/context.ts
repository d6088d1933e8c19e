/** Everything a packet handler may use: the broker's collaborators, bounds and shared tables. */
import type { Logger } from 'pino';
import type { DeviceKey } from '../bus/bus.js';
import type { DeviceGateway } from '../registry/device-manager.js';
import type { BackendSubscriptions } from './backend-subscriptions.js';
import type { BrokerLimits } from './limits.js';
import type { RevocationWindow } from './revocation.js';
import type { SessionTable } from './sessions.js';

export interface BrokerContext {
  readonly gateway: DeviceGateway;
  readonly verifyAdminToken: (token: string) => boolean;
  readonly limits: BrokerLimits;
  readonly logger: Logger;
  readonly now: () => Date;
  readonly devices: SessionTable<DeviceKey>;
  /** Backends that chose a client id; one connection per id, as MQTT requires. */
  readonly backends: SessionTable<string>;
  readonly backendSubscriptions: BackendSubscriptions;
  readonly revocations: RevocationWindow;
}
