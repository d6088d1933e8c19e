/**
 * The composition root: builds every part from the configuration, starts the listeners and
 * stops them in order. Nothing else in Keyway wires modules together.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { LocalBus } from '../bus/local-bus.js';
import { ensureDevelopmentPki } from '../pki/development-ca.js';
import { openSqliteStore } from '../store/sqlite-store.js';
import { DeviceManagerService } from '../registry/device-manager-service.js';
import { Broker, type BrokerOptions } from '../mqtt/broker.js';
import { createAdminApi } from '../api/admin-api.js';
import { ensureAdminToken } from './admin-token.js';
import { createLogger } from './logger.js';

export interface RunningServer {
  readonly mqttPort: number;
  /** The development open listener's port, when the configuration asks for one. */
  readonly openMqttPort?: number;
  readonly apiPort: number;
  readonly apiUrl: string;
  readonly dataDir: string;
  /** The development CA devices and the CLI must trust; absent with an operator-provided certificate. */
  readonly caCertPath?: string;
  /** Set on the start that created the admin token file. */
  readonly adminTokenCreatedAt?: string;
  close(): Promise<void>;
}

/** Knobs for tests and benchmarks; operators use the configuration. */
export interface ServerTuning {
  readonly mqttLimits?: BrokerOptions['limits'];
}

interface ServerTls {
  readonly cert: string;
  readonly key: string;
  readonly caCertPath?: string;
}

async function serverTls(config: Config): Promise<ServerTls> {
  if (config.tls.certFile && config.tls.keyFile) {
    return { cert: await readFile(config.tls.certFile, 'utf8'), key: await readFile(config.tls.keyFile, 'utf8') };
  }
  const pki = await ensureDevelopmentPki(config.dataDir, config.hostnames);
  return { cert: pki.certPem, key: pki.keyPem, caCertPath: pki.caCertPath };
}

const urlHost = (host: string): string =>
  host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;

export async function startServer(
  config: Config,
  logger: Logger = createLogger(config.logLevel),
  tuning: ServerTuning = {},
): Promise<RunningServer> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const tls = await serverTls(config);
  const store = await openSqliteStore(join(config.dataDir, 'keyway.db'));
  const stops: Array<() => Promise<void>> = [() => store.close()];
  const stopAll = async (): Promise<void> => {
    for (const stop of stops.reverse()) await stop();
  };
  try {
    const adminToken = await ensureAdminToken(store, config.dataDir);
    const bus = new LocalBus();
    stops.push(() => bus.close());
    const manager = new DeviceManagerService({ store, bus, logger: logger.child({ module: 'registry' }) });
    stops.push(() => manager.close());

    const broker = new Broker({
      gateway: manager,
      bus,
      verifyAdminToken: adminToken.verify,
      tls: { cert: tls.cert, key: tls.key },
      host: config.mqtt.host,
      port: config.mqtt.port,
      logger: logger.child({ module: 'mqtt' }),
      limits: { ...config.mqttLimits, ...tuning.mqttLimits },
      ...(config.devOpenListener ? { openListener: config.devOpenListener } : {}),
    });
    const { port: mqttPort, openPort: openMqttPort } = await broker.start();
    stops.push(() => broker.close());

    const api = await createAdminApi({
      manager,
      verifyAdminToken: adminToken.verify,
      logger: logger.child({ module: 'api' }),
      https: { cert: tls.cert, key: tls.key },
    });
    await api.listen({ host: config.api.host, port: config.api.port });
    stops.push(() => api.close());
    const address = api.server.address();
    const apiPort = typeof address === 'object' && address ? address.port : config.api.port;

    logger.info({ mqttPort, apiPort, dataDir: config.dataDir }, 'keyway started');
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
      apiPort,
      apiUrl: `https://${urlHost(config.api.host)}:${apiPort}`,
      dataDir: config.dataDir,
      ...(tls.caCertPath ? { caCertPath: tls.caCertPath } : {}),
      ...(adminToken.createdAt ? { adminTokenCreatedAt: adminToken.createdAt } : {}),
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
