/** `keyway serve`: load the configuration, start, tell the operator what to do next, stop on a signal. */
import { relative } from 'node:path';
import { DEFAULT_PORTS, loadConfig, type ListenerConfig, type PartialConfig } from '../config/config.js';
import { startServer, type RunningServer } from './server.js';
import { createLogger } from './logger.js';

export interface ServeOptions {
  configFile?: string;
  dataDir?: string;
  mqttPort?: number;
  httpPort?: number;
  apiPort?: number;
  hostnames?: string[];
  devOpenListener?: ListenerConfig;
  /** Where `KEYWAY_*` variables come from; the process environment by default. */
  env?: NodeJS.ProcessEnv;
}

/** Paths relative to the working directory when below it, so the printed commands stay short. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') ? rel : path;
}

export function welcome(server: RunningServer): string {
  const ca = server.caCertPath ? shown(server.caCertPath) : '<your CA certificate>';
  const mqttHost = `localhost -p ${server.mqttPort}`;
  const lines = [
    '',
    'Keyway is serving.',
    `  MQTT for devices   mqtts://localhost:${server.mqttPort}`,
    `  HTTPS for devices  https://localhost:${server.httpPort}   (Cloud IoT Core's device HTTP API, /v1/…)`,
    `  MQTT over WSS      wss://localhost:${server.httpPort}/mqtt   (subprotocol mqtt: devices and web applications)`,
    ...(server.mqttAlpnPort !== undefined ? [`  MQTT by ALPN mqtt  port ${server.mqttAlpnPort}`] : []),
    `  Admin API          ${server.apiUrl}`,
    `  Data directory     ${shown(server.dataDir)}`,
    ...(server.caCertPath ? [`  Development CA     ${ca}   (devices and the CLI trust this certificate)`] : []),
    server.adminTokenCreatedAt
      ? `  Admin token        written to ${shown(server.adminTokenCreatedAt)} (created now, mode 0600; keep it secret)`
      : `  Admin token        in ${shown(server.dataDir)}/admin-token`,
    '',
    'Connect a first device, from another terminal in this directory:',
    ...(server.apiPort !== DEFAULT_PORTS.api ? [`  export KEYWAY_API_URL=${server.apiUrl}`] : []),
    '  npx keyway keys generate --type es256 --out ./dev1',
    '  npx keyway registries create fleet --project demo --region europe-west1',
    '  npx keyway devices create dev1 --registry fleet --public-key path=./dev1/public.pem,type=es256',
    `  mosquitto_pub --cafile ${ca} -h ${mqttHost} -V mqttv311 \\`,
    '    -i projects/demo/locations/europe-west1/registries/fleet/devices/dev1 -u unused \\',
    '    -P "$(npx keyway keys jwt --private-key ./dev1/private.pem --project demo)" \\',
    '    -t /devices/dev1/events -m "hello" -q 1',
    '  # or over HTTPS:',
    `  curl --cacert ${ca} -H "authorization: Bearer $(npx keyway keys jwt --private-key ./dev1/private.pem --project demo)" \\`,
    `    -d '{"binary_data": "aGVsbG8="}' \\`,
    `    https://localhost:${server.httpPort}/v1/projects/demo/locations/europe-west1/registries/fleet/devices/dev1:publishEvent`,
    '  npx keyway devices describe dev1 --registry fleet',
    '',
  ];
  return lines.join('\n');
}

/** Printed on every start with the open listener, so nobody mistakes it for a way to run Keyway. */
export function openListenerWarning(host: string, port: number): string {
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return (
    `WARNING: DEVELOPMENT OPEN LISTENER on mqtt://${address}: plaintext, anonymous, any topic. ` +
    'A conformance-testing aid only; never use it with real devices or data.'
  );
}

export async function serve(options: ServeOptions): Promise<void> {
  const overrides: PartialConfig = {
    ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}),
    ...(options.mqttPort !== undefined ? { mqtt: { port: options.mqttPort } } : {}),
    ...(options.httpPort !== undefined ? { http: { port: options.httpPort } } : {}),
    ...(options.apiPort !== undefined ? { api: { port: options.apiPort } } : {}),
    ...(options.hostnames?.length ? { hostnames: options.hostnames } : {}),
    ...(options.devOpenListener ? { devOpenListener: options.devOpenListener } : {}),
  };
  const config = loadConfig({
    ...(options.configFile ? { file: options.configFile } : {}),
    ...(options.env ? { env: options.env } : {}),
    overrides,
  });
  const logger = createLogger(config.logLevel);
  const server = await startServer(config, logger);
  process.stdout.write(`${welcome(server)}\n`);
  if (config.devOpenListener && server.openMqttPort !== undefined) {
    process.stdout.write(`${openListenerWarning(config.devOpenListener.host, server.openMqttPort)}\n`);
  }

  // SIGHUP reloads the server certificates (the files are also watched).
  const reload = (): void => void server.reloadTls();
  process.on('SIGHUP', reload);
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      logger.info({ signal }, 'shutting down');
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.off('SIGHUP', reload);
      void server.close().then(resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
