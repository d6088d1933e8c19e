/**
 * The broker under test. By default a fresh Keyway with its development open listener; with
 * `KEYWAY_CONFORMANCE_URL=mqtt://HOST:PORT` any broker already running there, so the suite itself
 * can be checked against another implementation (see README.md in this folder).
 */
import { connect } from 'node:net';

export interface Target {
  readonly host: string;
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/** Fails once, clearly, when nothing listens at the URL, rather than in every test. */
function reachable(host: string, port: number, url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port }, () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', (e) => reject(new Error(`KEYWAY_CONFORMANCE_URL: nothing answers at ${url} (${e.message})`)));
  });
}

export async function startTarget(): Promise<Target> {
  const url = process.env.KEYWAY_CONFORMANCE_URL;
  if (url) {
    const parsed = new URL(url);
    if (parsed.protocol !== 'mqtt:' || !parsed.port) {
      throw new Error(`KEYWAY_CONFORMANCE_URL: '${url}' is not mqtt://HOST:PORT`);
    }
    const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
    await reachable(host, Number(parsed.port), url);
    return { host, port: Number(parsed.port), url, close: async () => undefined };
  }
  // Loaded only here, so a run against another broker does not load Keyway at all.
  const { startTestServer } = await import('../support/server.js');
  const server = await startTestServer({ devOpenListener: true });
  const port = server.openMqttPort;
  if (port === undefined) {
    await server.close();
    throw new Error('Keyway started without its development open listener');
  }
  return { host: '127.0.0.1', port, url: `mqtt://127.0.0.1:${port}`, close: () => server.close() };
}
