/** Everything a packet handler may use: the broker's collaborators, bounds and shared tables. */
import type { Logger } from 'pino';
import type { DeviceKey } from '../bus/bus.js';
import type { AuditSink } from '../domain/audit-events.js';
import type { BackendAuthenticator, BackendConnections } from './backend-identity.js';
import type { DeviceGateway } from '../registry/device-manager.js';
import type { ClockedQuotas } from '../registry/device-quotas.js';
import type { ConnectRateLimiter } from './connect-rate.js';
import type { CertificateConnections } from './certificate-connections.js';
import type { Connection } from './connection.js';
import type { DevicePolicies } from './device-policies.js';
import type { AttachedDevices } from './gateway-attachments.js';
import type { DeviceSpaces } from './device-spaces.js';
import type { BrokerLimits } from './limits.js';
import type { Namespace } from './namespace.js';
import type { RevocationWindow } from './revocation.js';
import type { SessionTable } from './sessions.js';

export interface BrokerContext {
  readonly gateway: DeviceGateway;
  /** Service-account logins of backend subscribers; undefined: every backend login is refused. */
  readonly backends: BackendAuthenticator | undefined;
  /** Live backend connections by account, for `ServiceIdentityChanged`. */
  readonly backendConnections: BackendConnections;
  readonly limits: BrokerLimits;
  readonly logger: Logger;
  readonly now: () => Date;
  readonly devices: SessionTable<DeviceKey>;
  /** Devices attached to a gateway's connection, beside `devices`: one connection per device, either way. */
  readonly attached: AttachedDevices;
  /** The session engine's namespace of backend subscribers, where device events and state are published. */
  readonly backend: Namespace;
  /** The development open namespace (open listener only); it shares nothing with the others. */
  readonly open: Namespace;
  /** Compiles a device connection's policy (the built-in Cloud IoT Core grants when none are stored). */
  readonly policies: DevicePolicies;
  /** Custom device topics, one space per registry. */
  readonly deviceSpaces: DeviceSpaces;
  readonly revocations: RevocationWindow;
  readonly connectRate: ConnectRateLimiter;
  /** Device and registry rate limits (shared with the HTTP bridge). */
  readonly quotas: ClockedQuotas;
  /** Live certificate connections by revocation key, for `CertificatesRevoked`. */
  readonly certificates: CertificateConnections<Connection>;
  /** Where authentication and authorization decisions are recorded, when there is an audit log. */
  readonly audit?: AuditSink;
}
