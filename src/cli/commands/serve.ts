/** `keyway serve`: runs the server in this process until SIGINT or SIGTERM. */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { parsePort } from '../arg-parsers.js';
import { collect } from '../command-kit.js';
import type { CliIo } from '../io.js';

interface ServeFlags {
  config?: string;
  dataDir?: string;
  mqttPort?: string;
  apiPort?: string;
  hostname?: string[];
}

export function registerServe(program: Command, io: CliIo): void {
  program
    .command('serve')
    .description('run Keyway: the MQTT bridge for devices and the admin API')
    .option('--config <file>', 'JSON configuration file (default: $KEYWAY_CONFIG)')
    .option('--data-dir <dir>', 'data directory (default: $KEYWAY_DATA_DIR or ./keyway-data)')
    .option('--mqtt-port <n>', 'MQTT over TLS port (default 8883)')
    .option('--api-port <n>', 'admin API port (default 9443)')
    .option('--hostname <name>', 'extra DNS name or IP for the server certificate; repeatable or comma-separated', collect)
    .action(async (f: ServeFlags) => {
      const mqttPort = f.mqttPort === undefined ? undefined : parsePort('--mqtt-port', f.mqttPort);
      const apiPort = f.apiPort === undefined ? undefined : parsePort('--api-port', f.apiPort);
      const hostnames = f.hostname?.flatMap((h) => h.split(',')).map((h) => h.trim()).filter(Boolean);
      // Loaded on demand: client commands should not pay for the server's modules.
      const { serve } = await import('../../server/serve.js');
      await serve({
        ...(f.config !== undefined ? { configFile: resolve(io.cwd, f.config) } : {}),
        ...(f.dataDir !== undefined ? { dataDir: resolve(io.cwd, f.dataDir) } : {}),
        ...(mqttPort !== undefined ? { mqttPort } : {}),
        ...(apiPort !== undefined ? { apiPort } : {}),
        ...(hostnames?.length ? { hostnames } : {}),
      });
    });
}
