/** Starts a real Keyway (SQLite, development CA, TLS listeners on free ports) in a temp data dir. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { AdminClient } from '../../src/api/client.js';
import { loadConfig, type ClientCertificateMode, type PkiConfig } from '../../src/config/config.js';
import { httpsJson, type JsonResponse } from './https-json.js';
import { startServer, type RunningServer, type ServerTuning } from '../../src/server/server.js';

export type ApiResponse = JsonResponse;

export interface TestServer {
  readonly server: RunningServer;
  readonly dataDir: string;
  readonly ca: string;
  readonly adminToken: string;
  readonly mqttPort: number;
  /** The development open listener (plaintext, anonymous) on 127.0.0.1, when asked for. */
  readonly openMqttPort?: number;
  api(method: string, path: string, body?: unknown, token?: string | null): Promise<ApiResponse>;
  /**
   * MQTT credentials of a backend subscriber of `project`: a service account `backend` (viewer on
   * the project) and an API key, made through the admin API on first use.
   */
  backend(project: string): Promise<BackendLogin>;
  close(): Promise<void>;
}

export interface BackendLogin {
  readonly username: string;
  readonly password: string;
}

export interface TestServerOptions extends ServerTuning {
  /** Where the data directory goes; a fresh temp directory by default. */
  readonly dataDir?: string;
  /** Also start the development open listener on 127.0.0.1 and a free port. */
  readonly devOpenListener?: boolean;
  /** CA key custody, e.g. `{ masterKeyFile }` outside the data directory: a file, unlike KEYWAY_MASTER_KEY, does not leak into other in-process servers. */
  readonly pki?: PkiConfig;
  /** `http.clientCertificates`: whether the device HTTPS listener asks for client certificates (default `request`). */
  readonly httpClientCertificates?: ClientCertificateMode;
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const { dataDir = mkdtempSync(join(tmpdir(), 'keyway-e2e-')), devOpenListener = false, pki, httpClientCertificates, ...tuning } = options;
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir,
      mqtt: { host: '127.0.0.1', port: 0 },
      http: { host: '127.0.0.1', port: 0, ...(httpClientCertificates ? { clientCertificates: httpClientCertificates } : {}) },
      api: { host: '127.0.0.1', port: 0 },
      logLevel: 'silent',
      ...(devOpenListener ? { devOpenListener: { host: '127.0.0.1', port: 0 } } : {}),
      ...(pki ? { pki } : {}),
    },
  });
  const logger = pino({ level: process.env.KEYWAY_TEST_LOG ?? 'silent' });
  const server = await startServer(config, logger, tuning);
  const ca = readFileSync(join(dataDir, 'pki', 'ca.crt'), 'utf8');
  const adminToken = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();

  const api = (method: string, path: string, body?: unknown, token: string | null = adminToken): Promise<ApiResponse> => {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const headers = {
      ...(token !== null ? { authorization: `Bearer ${token}` } : {}),
      ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
    };
    return httpsJson({ port: server.apiPort, method, path, ca, headers }, payload);
  };

  const backends = new Map<string, Promise<BackendLogin>>();
  const makeBackend = async (project: string): Promise<BackendLogin> => {
    const base = `/v1/projects/${project}/serviceAccounts`;
    const created = await api('POST', base, { id: 'backend', bindings: [{ role: 'viewer', scope: `projects/${project}` }] });
    if (created.status !== 200) throw new Error(`creating the backend service account: ${created.status} ${JSON.stringify(created.body)}`);
    const key = await api('POST', `${base}/backend/keys`, {});
    if (key.status !== 200) throw new Error(`creating the backend's key: ${key.status} ${JSON.stringify(key.body)}`);
    return { username: `${project}/backend`, password: (key.body as { apiKey: string }).apiKey };
  };
  const backend = (project: string): Promise<BackendLogin> => {
    let login = backends.get(project);
    if (!login) backends.set(project, (login = makeBackend(project)));
    return login;
  };

  return {
    server,
    dataDir,
    backend,
    ca,
    adminToken,
    mqttPort: server.mqttPort,
    ...(server.openMqttPort !== undefined ? { openMqttPort: server.openMqttPort } : {}),
    api,
    close: async () => {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * A backend's MQTT login on any running server: a service account (viewer on `project`) and an
 * API key, made through the admin API with `adminToken`.
 */
export async function createBackendLogin(o: { apiUrl: string; ca: string; adminToken: string; project: string; id?: string }): Promise<BackendLogin> {
  const client = new AdminClient({ baseUrl: o.apiUrl, token: o.adminToken, ca: o.ca });
  const id = o.id ?? 'backend';
  await client.createServiceAccount(o.project, { id, bindings: [{ role: 'viewer', scope: `projects/${o.project}` }] });
  const key = await client.createServiceAccountKey(o.project, id);
  return { username: `${o.project}/${id}`, password: key.apiKey as string };
}
