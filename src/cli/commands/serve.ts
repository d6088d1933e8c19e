/** `keyway serve`: runs the server in this process until SIGINT or SIGTERM. */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { checkLoopbackListener, ListenAddressError, parseListenAddress, type ListenAddress } from '../../config/listen-address.js';
import { parsePort } from '../arg-parsers.js';
import { collect } from '../command-kit.js';
import { UsageError, type CliIo } from '../io.js';

interface ServeFlags {
  config?: string;
  dataDir?: string;
  mqttPort?: string;
  httpPort?: string;
  apiPort?: string;
  hostname?: string[];
  devOpenListener?: string;
}

/** Checked here, before the server's modules load, so a non-loopback address fails as usage. */
function openListener(text: string): ListenAddress {
  try {
    return checkLoopbackListener('--dev-open-listener', parseListenAddress('--dev-open-listener', text));
  } catch (e) {
    throw e instanceof ListenAddressError ? new UsageError(e.message) : e;
  }
}

export function registerServe(program: Command, io: CliIo): void {
  program
    .command('serve')
    .description('run Keyway: the MQTT and HTTPS bridges for devices and the admin API')
    .option('--config <file>', 'JSON configuration file (default: $KEYWAY_CONFIG)')
    .option('--data-dir <dir>', 'data directory (default: $KEYWAY_DATA_DIR or ./keyway-data)')
    .option('--mqtt-port <n>', 'MQTT over TLS port (default 8883)')
    .option('--http-port <n>', 'device HTTPS port: the HTTP bridge and MQTT over WebSockets (default 8443)')
    .option('--api-port <n>', 'admin API port (default 9443)')
    .option('--hostname <name>', 'extra DNS name or IP for the server certificate; repeatable or comma-separated', collect)
    .option(
      '--dev-open-listener <host:port>',
      'TESTING ONLY: also serve plaintext MQTT to anonymous clients on any topic (loopback only, e.g. 127.0.0.1:1884)',
    )
    .action(async (f: ServeFlags) => {
      const mqttPort = f.mqttPort === undefined ? undefined : parsePort('--mqtt-port', f.mqttPort);
      const httpPort = f.httpPort === undefined ? undefined : parsePort('--http-port', f.httpPort);
      const apiPort = f.apiPort === undefined ? undefined : parsePort('--api-port', f.apiPort);
      const hostnames = f.hostname?.flatMap((h) => h.split(',')).map((h) => h.trim()).filter(Boolean);
      const devOpenListener = f.devOpenListener === undefined ? undefined : openListener(f.devOpenListener);
      // Loaded on demand: client commands should not pay for the server's modules.
      const { serve } = await import('../../server/serve.js');
      await serve({
        ...(f.config !== undefined ? { configFile: resolve(io.cwd, f.config) } : {}),
        ...(f.dataDir !== undefined ? { dataDir: resolve(io.cwd, f.dataDir) } : {}),
        ...(mqttPort !== undefined ? { mqttPort } : {}),
        ...(httpPort !== undefined ? { httpPort } : {}),
        ...(apiPort !== undefined ? { apiPort } : {}),
        ...(hostnames?.length ? { hostnames } : {}),
        ...(devOpenListener ? { devOpenListener } : {}),
        env: io.env,
      });
    });
}
