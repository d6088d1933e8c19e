/**
 * The composition root: builds every part from the configuration, starts the listeners and
 * stops them in order. Nothing else in Keyway wires modules together.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Server as TlsServer } from 'node:tls';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { LocalBus } from '../bus/local-bus.js';
import { openSqliteStore } from '../store/sqlite-store.js';
import { CertificateAuthorityService } from '../pki/certificate-authority-service.js';
import { openCaKeyCustodies } from '../pki/custodies.js';
import { DeviceManagerService } from '../registry/device-manager-service.js';
import { DeviceRateLimiter } from '../registry/device-quotas.js';
import { Broker, type BrokerOptions } from '../mqtt/broker.js';
import { secureContextOptions } from '../mqtt/listener.js';
import { createAdminApi } from '../api/admin-api.js';
import { createDeviceBridge } from '../bridge/device-bridge.js';
import { AuditLog } from '../audit/audit-log.js';
import { ServiceAccountService } from '../registry/service-accounts.js';
import { PolicyService } from '../registry/policy-service.js';
import { auditRevocations } from './audit-wiring.js';
import { ensureAdminToken } from './admin-token.js';
import { createLogger } from './logger.js';
import {
  CertificateReloader,
  describeChains,
  loadDevelopmentCertificates,
  loadOperatorCertificates,
  operatorCertificateFiles,
  type LoadedCertificates,
} from './tls-certificates.js';

export interface RunningServer {
  readonly mqttPort: number;
  /** The development open listener's port, when the configuration asks for one. */
  readonly openMqttPort?: number;
  /** The MQTT-by-ALPN listener's port, when the configuration asks for one. */
  readonly mqttAlpnPort?: number;
  /** The device HTTPS listener's port: the HTTP bridge and MQTT over WebSockets (`/mqtt`). */
  readonly httpPort: number;
  readonly apiPort: number;
  readonly apiUrl: string;
  readonly dataDir: string;
  /** The development CA devices and the CLI must trust; absent with an operator-provided certificate. */
  readonly caCertPath?: string;
  /** Set on the start that created the admin token file. */
  readonly adminTokenCreatedAt?: string;
  /**
   * Reloads the server certificates (SIGHUP) on every TLS listener; resolves false, keeping the
   * old ones, when the new ones do not load.
   */
  reloadTls(): Promise<boolean>;
  close(): Promise<void>;
}

/** Knobs for tests and benchmarks; operators use the configuration. */
export interface ServerTuning {
  readonly mqttLimits?: BrokerOptions['limits'];
}

/** The operator's certificates when configured (checked: a bad chain stops the start), else the development CA's. */
async function serverTls(config: Config): Promise<LoadedCertificates> {
  const files = operatorCertificateFiles(config);
  return files.length > 0 ? loadOperatorCertificates(files) : loadDevelopmentCertificates(config);
}

/** The secure-context options of `loaded` in the shape Node's https options take. */
const httpsOptions = (loaded: LoadedCertificates): { cert: string[]; key: string[] } => ({
  cert: [...loaded.credentials.cert],
  key: [...loaded.credentials.key],
});

const urlHost = (host: string): string =>
  host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;

export async function startServer(
  config: Config,
  logger: Logger = createLogger(config.logLevel),
  tuning: ServerTuning = {},
): Promise<RunningServer> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const tls = await serverTls(config);
  if (tls.developmentCaPath) {
    logger.warn(
      { ca: tls.developmentCaPath },
      'serving certificates of the development CA: for development only; install your own (tls.certificates) for real devices',
    );
  }
  logger.info({ certificates: describeChains(tls.chains) }, 'server certificates');
  const store = await openSqliteStore(join(config.dataDir, 'keyway.db'));
  const stops: Array<() => Promise<void>> = [() => store.close()];
  const stopAll = async (): Promise<void> => {
    for (const stop of stops.reverse()) await stop();
  };
  try {
    const adminToken = await ensureAdminToken(store, config.dataDir);
    const bus = new LocalBus();
    stops.push(() => bus.close());
    // Closed after the listeners (stops run in reverse), so their last decisions are written.
    const audit = new AuditLog({ store: store.audit, logger: logger.child({ module: 'audit' }) });
    stops.push(() => audit.close());
    await audit.start({ pid: process.pid });
    const unsubscribeRevocations = auditRevocations(bus, audit);
    stops.push(async () => unsubscribeRevocations());
    // Secrets come from the environment at start and are never part of the configuration.
    const custodies = await openCaKeyCustodies({
      dataDir: config.dataDir,
      ...(config.pki?.masterKeyFile ? { masterKeyFile: config.pki.masterKeyFile } : {}),
      ...(process.env.KEYWAY_MASTER_KEY ? { masterKey: process.env.KEYWAY_MASTER_KEY } : {}),
      ...(config.pki?.pkcs11 ? { pkcs11: config.pki.pkcs11 } : {}),
      ...(process.env.KEYWAY_PKCS11_PIN ? { pkcs11Pin: process.env.KEYWAY_PKCS11_PIN } : {}),
    });
    stops.push(() => custodies.close());
    const authorities = new CertificateAuthorityService({
      store: store.pki,
      custodies,
      onRevoked: (keys, reason) => bus.publishCertificatesRevoked({ keys, reason }),
    });
    // One set of device and registry buckets for MQTT, HTTP and configuration updates, so that all count against the same limits.
    const quotas = new DeviceRateLimiter();
    const manager = new DeviceManagerService({
      store,
      bus,
      configQuotas: quotas,
      logger: logger.child({ module: 'registry' }),
      // Certificates and CAs Keyway's own PKI revoked, beside each registry's uploaded CRLs.
      revocations: [authorities.revocationSource],
      issuerProfiles: authorities.issuerProfiles,
    });
    stops.push(() => manager.close());

    // Closed after the API and the broker (stops run in reverse), so the last key uses are written.
    const accounts = new ServiceAccountService({ store: store.accounts, bus });
    stops.push(() => accounts.close());

    const policies = new PolicyService({ store, bus, logger: logger.child({ module: 'policy' }) });
    const broker = new Broker({
      gateway: manager,
      quotas,
      // The broker compiles each connection's policy; it never sees the store.
      policies: { compile: async (device, certSubject) => (await policies.compileForDevice(device.numId, certSubject, device.name))?.compiled },
      bus,
      backends: { authenticate: (username, key) => accounts.authenticateBackend(username, key) },
      tls: tls.credentials,
      host: config.mqtt.host,
      port: config.mqtt.port,
      logger: logger.child({ module: 'mqtt' }),
      audit,
      limits: { ...config.mqttLimits, ...tuning.mqttLimits },
      ...(config.devOpenListener ? { openListener: config.devOpenListener } : {}),
      ...(config.mqtt.alpn ? { alpnListener: { host: config.mqtt.alpn.host ?? config.mqtt.host, port: config.mqtt.alpn.port } } : {}),
    });
    // The device HTTPS listener: the HTTP bridge, and MQTT over WebSockets on its upgrades.
    const bridge = await createDeviceBridge({
      gateway: manager,
      messages: broker.deviceMessages,
      quotas,
      audit,
      // As for the broker: compiled per request here, there being no session to keep it in.
      policies: { compile: async (device) => (await policies.compileForDevice(device.numId, undefined, device.name))?.compiled },
      tls: tls.credentials,
      clientCertificates: config.http.clientCertificates,
      logger: logger.child({ module: 'http' }),
    });
    const { port: mqttPort, openPort: openMqttPort, alpnPort: mqttAlpnPort } = await broker.start();
    stops.push(() => broker.close());
    // Stopped before the broker (stops run in reverse), so that what it accepted still reaches the backends.
    stops.push(() => bridge.close());
    const webSockets = broker.serveWebSockets(bridge.server);
    // Stopped first: closing an HTTPS server waits for the sockets upgraded from it.
    stops.push(() => webSockets.close());
    const httpPort = await bridge.listen(config.http.host, config.http.port);

    const api = await createAdminApi({
      manager,
      authorities,
      accounts,
      audit,
      policies,
      verifyAdminToken: adminToken.verify,
      logger: logger.child({ module: 'api' }),
      https: httpsOptions(tls),
    });
    await api.listen({ host: config.api.host, port: config.api.port });
    stops.push(() => api.close());
    const address = api.server.address();
    const apiPort = typeof address === 'object' && address ? address.port : config.api.port;

    // Every TLS listener, or none: the broker tries the new credentials first and throws if they do not load.
    const applyTls = (loaded: LoadedCertificates): void => {
      broker.setTlsCredentials(loaded.credentials);
      (api.server as unknown as TlsServer).setSecureContext(secureContextOptions(loaded.credentials));
      bridge.setTlsCredentials(loaded.credentials);
    };
    const files = operatorCertificateFiles(config);
    const tlsLog = logger.child({ module: 'tls' });
    const reloader = files.length > 0 ? new CertificateReloader(files, applyTls, tlsLog) : undefined;
    if (reloader) {
      await reloader.start();
      stops.push(async () => reloader.close());
    }
    const reloadTls = async (): Promise<boolean> => {
      if (reloader) return reloader.reload('reload requested');
      try {
        applyTls(await loadDevelopmentCertificates(config));
        tlsLog.info('development server certificates reloaded');
        return true;
      } catch (e) {
        tlsLog.error({ err: (e as Error).message }, 'server certificates not reloaded; the previous ones are still served');
        return false;
      }
    };

    logger.info({ mqttPort, httpPort, apiPort, dataDir: config.dataDir }, 'keyway started');
    if (openMqttPort !== undefined) {
      logger.warn(
        { openMqttPort, host: config.devOpenListener?.host },
        'development open listener: plaintext, anonymous clients, any topic; for conformance testing only',
      );
    }
    let closing: Promise<void> | undefined;
    return {
      mqttPort,
      ...(openMqttPort !== undefined ? { openMqttPort } : {}),
      ...(mqttAlpnPort !== undefined ? { mqttAlpnPort } : {}),
      httpPort,
      apiPort,
      apiUrl: `https://${urlHost(config.api.host)}:${apiPort}`,
      dataDir: config.dataDir,
      ...(tls.developmentCaPath ? { caCertPath: tls.developmentCaPath } : {}),
      ...(adminToken.createdAt ? { adminTokenCreatedAt: adminToken.createdAt } : {}),
      reloadTls,
      close: () => {
        closing ??= stopAll().then(() => logger.info('keyway stopped'));
        return closing;
      },
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
