/**
 * Keyway's configuration: built-in defaults, then an optional JSON file, then `KEYWAY_*`
 * environment variables, then explicit overrides (command-line flags), each layer winning over
 * the one before.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { checkLoopbackListener, ListenAddressError, parseListenAddress } from './listen-address.js';

export interface ListenerConfig {
  readonly host: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
}

/** The MQTT listener, and optionally MQTT by ALPN `mqtt` on a second port (443 in production). */
export interface MqttListenerConfig extends ListenerConfig {
  /** Off by default: binding 443 needs privileges (README, "MQTT on port 443"). Host: `mqtt.host`. */
  readonly alpn?: { readonly host?: string; readonly port: number };
}

/**
 * Whether the device HTTPS listener asks TLS clients for a certificate: `request` (asked for, never
 * required) lets devices using MQTT over WebSockets authenticate with one; `off` never asks, which
 * browsers need to open a WebSocket without an ordinary request first.
 */
export const CLIENT_CERTIFICATE_MODES = ['request', 'off'] as const;
export type ClientCertificateMode = (typeof CLIENT_CERTIFICATE_MODES)[number];

export interface HttpListenerConfig extends ListenerConfig {
  readonly clientCertificates: ClientCertificateMode;
}

/** One operator-provided server certificate chain (PEM, leaf first) and its private key. */
export interface CertificateFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

/**
 * CA key custody. Keys are encrypted under a key-encryption key from `masterKeyFile` (outside
 * the data directory) or KEYWAY_MASTER_KEY; with `pkcs11`, new CA keys are made in that token.
 * Secrets themselves (KEYWAY_MASTER_KEY, KEYWAY_PKCS11_PIN) are read at start, never kept here.
 */
export interface PkiConfig {
  readonly masterKeyFile?: string;
  readonly pkcs11?: { readonly module: string; readonly tokenLabel: string; readonly pinFile?: string };
}

export interface Config {
  /** Holds the SQLite file, the development CA, the server certificate and the admin token. */
  readonly dataDir: string;
  /** Extra DNS names or IP addresses for the server certificate, beside localhost and 127.0.0.1. */
  readonly hostnames: readonly string[];
  readonly mqtt: MqttListenerConfig;
  /**
   * The device HTTPS listener: the Cloud IoT Core device HTTP bridge (`/v1/…:publishEvent`,
   * `:setState`, `/config`) and MQTT over secure WebSockets on `/mqtt`. TLS only, like every
   * device listener.
   */
  readonly http: HttpListenerConfig;
  readonly api: ListenerConfig;
  /**
   * Operator-provided server certificates (PEM files, reloaded when they change): `certificates`
   * holds up to one ECDSA and one RSA chain, `certFile`/`keyFile` is shorthand for one more. The
   * development CA issues an ECDSA and an RSA one when none is given.
   */
  readonly tls: { readonly certFile?: string; readonly keyFile?: string; readonly certificates?: readonly CertificateFiles[] };
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /**
   * A plaintext MQTT listener for an open registry (anonymous clients, any topic), for conformance
   * testing only; absent by default and refused on anything but loopback.
   */
  readonly devOpenListener?: ListenerConfig;
  /**
   * Overrides of the MQTT broker's bounds by name (`connectsPerSecond`, `maxConnections`,
   * `sessionQueueMessages` …; README, "Broker limits"); the broker checks names and values at start.
   */
  readonly mqttLimits: Readonly<Record<string, number>>;
  /** Keyway's own CAs: where their keys are kept (README, "Certificate authority"). */
  readonly pki?: PkiConfig;
}

export interface ConfigSources {
  /** Path of a JSON configuration file; `KEYWAY_CONFIG` when absent. */
  readonly file?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly overrides?: PartialConfig;
}

export type PartialConfig = {
  -readonly [K in keyof Config]?: Config[K] extends readonly unknown[]
    ? Config[K]
    : Config[K] extends object
      ? Partial<Config[K]>
      : Config[K];
};

export const DEFAULT_PORTS = { mqtt: 8883, http: 8443, api: 9443 } as const;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

function defaults(): Config {
  return {
    dataDir: resolve('keyway-data'),
    hostnames: [],
    mqtt: { host: '0.0.0.0', port: DEFAULT_PORTS.mqtt },
    http: { host: '0.0.0.0', port: DEFAULT_PORTS.http, clientCertificates: 'request' },
    api: { host: '0.0.0.0', port: DEFAULT_PORTS.api },
    tls: {},
    logLevel: 'info',
    mqttLimits: {},
  };
}

function port(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(`${name}: '${value}' is not a TCP port`);
  return n;
}

function clientCertificateMode(name: string, value: unknown): ClientCertificateMode {
  const mode = CLIENT_CERTIFICATE_MODES.find((m) => m === value);
  if (mode) return mode;
  throw new ConfigError(
    `${name}: '${String(value)}' is not 'request' (ask every client for a certificate, the default) or 'off' (never ask; WebSocket devices use JWTs)`,
  );
}

function pkiFromEnv(env: NodeJS.ProcessEnv): PkiConfig | undefined {
  const { KEYWAY_MASTER_KEY_FILE: keyFile, KEYWAY_PKCS11_MODULE: module, KEYWAY_PKCS11_TOKEN_LABEL: tokenLabel } = env;
  const pinFile = env.KEYWAY_PKCS11_PIN_FILE;
  if (!keyFile && !module && !tokenLabel && !pinFile) return undefined;
  if (Boolean(module) !== Boolean(tokenLabel)) throw new ConfigError('KEYWAY_PKCS11_MODULE and KEYWAY_PKCS11_TOKEN_LABEL go together');
  if (pinFile && !module) throw new ConfigError('KEYWAY_PKCS11_PIN_FILE needs KEYWAY_PKCS11_MODULE and KEYWAY_PKCS11_TOKEN_LABEL');
  return {
    ...(keyFile ? { masterKeyFile: keyFile } : {}),
    ...(module && tokenLabel ? { pkcs11: { module, tokenLabel, ...(pinFile ? { pinFile } : {}) } } : {}),
  };
}

function fromEnv(env: NodeJS.ProcessEnv): PartialConfig {
  const out: PartialConfig = {};
  if (env.KEYWAY_DATA_DIR) out.dataDir = env.KEYWAY_DATA_DIR;
  if (env.KEYWAY_HOSTNAMES) out.hostnames = env.KEYWAY_HOSTNAMES.split(',').map((h) => h.trim()).filter(Boolean);
  if (env.KEYWAY_MQTT_HOST || env.KEYWAY_MQTT_PORT) {
    out.mqtt = {
      ...(env.KEYWAY_MQTT_HOST ? { host: env.KEYWAY_MQTT_HOST } : {}),
      ...(env.KEYWAY_MQTT_PORT ? { port: port('KEYWAY_MQTT_PORT', env.KEYWAY_MQTT_PORT) } : {}),
    };
  }
  if (env.KEYWAY_MQTT_ALPN_PORT) {
    const alpn = {
      port: port('KEYWAY_MQTT_ALPN_PORT', env.KEYWAY_MQTT_ALPN_PORT),
      ...(env.KEYWAY_MQTT_ALPN_HOST ? { host: env.KEYWAY_MQTT_ALPN_HOST } : {}),
    };
    out.mqtt = { ...out.mqtt, alpn };
  } else if (env.KEYWAY_MQTT_ALPN_HOST) {
    throw new ConfigError('KEYWAY_MQTT_ALPN_HOST needs KEYWAY_MQTT_ALPN_PORT');
  }
  if (env.KEYWAY_HTTP_HOST || env.KEYWAY_HTTP_PORT || env.KEYWAY_HTTP_CLIENT_CERTIFICATES) {
    const certificates = env.KEYWAY_HTTP_CLIENT_CERTIFICATES;
    out.http = {
      ...(env.KEYWAY_HTTP_HOST ? { host: env.KEYWAY_HTTP_HOST } : {}),
      ...(env.KEYWAY_HTTP_PORT ? { port: port('KEYWAY_HTTP_PORT', env.KEYWAY_HTTP_PORT) } : {}),
      ...(certificates ? { clientCertificates: clientCertificateMode('KEYWAY_HTTP_CLIENT_CERTIFICATES', certificates) } : {}),
    };
  }
  if (env.KEYWAY_API_HOST || env.KEYWAY_API_PORT) {
    out.api = {
      ...(env.KEYWAY_API_HOST ? { host: env.KEYWAY_API_HOST } : {}),
      ...(env.KEYWAY_API_PORT ? { port: port('KEYWAY_API_PORT', env.KEYWAY_API_PORT) } : {}),
    };
  }
  if (env.KEYWAY_TLS_CERT || env.KEYWAY_TLS_KEY) {
    out.tls = {
      ...(env.KEYWAY_TLS_CERT ? { certFile: env.KEYWAY_TLS_CERT } : {}),
      ...(env.KEYWAY_TLS_KEY ? { keyFile: env.KEYWAY_TLS_KEY } : {}),
    };
  }
  if (env.KEYWAY_LOG_LEVEL) out.logLevel = env.KEYWAY_LOG_LEVEL as Config['logLevel'];
  const pki = pkiFromEnv(env);
  if (pki) out.pki = pki;
  if (env.KEYWAY_DEV_OPEN_LISTENER) out.devOpenListener = listenAddress('KEYWAY_DEV_OPEN_LISTENER', env.KEYWAY_DEV_OPEN_LISTENER);
  return out;
}

function fromFile(path: string): PartialConfig {
  let text: string;
  let config: PartialConfig;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read configuration file ${path}: ${(e as Error).message}`);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    config = parsed as PartialConfig;
  } catch (e) {
    throw new ConfigError(`configuration file ${path} is not a JSON object: ${(e as Error).message}`);
  }
  // The file may spell the open listener as "127.0.0.1:1884", like the variable and the flag.
  const open: unknown = config.devOpenListener;
  if (typeof open === 'string') config.devOpenListener = listenAddress('devOpenListener', open);
  return config;
}

function listenAddress(name: string, text: string): ListenerConfig {
  try {
    return parseListenAddress(name, text);
  } catch (e) {
    throw e instanceof ListenAddressError ? new ConfigError(e.message) : e;
  }
}

function merge(base: Config, layer: PartialConfig): Config {
  const devOpenListener = layer.devOpenListener ?? base.devOpenListener;
  return {
    dataDir: layer.dataDir ?? base.dataDir,
    hostnames: layer.hostnames ?? base.hostnames,
    mqtt: { ...base.mqtt, ...layer.mqtt },
    // A layer's alpn object is whole (port required), so it replaces the one below it.
    http: { ...base.http, ...layer.http },
    api: { ...base.api, ...layer.api },
    tls: { ...base.tls, ...layer.tls },
    logLevel: layer.logLevel ?? base.logLevel,
    mqttLimits: { ...base.mqttLimits, ...layer.mqttLimits } as Config['mqttLimits'],
    ...(base.pki || layer.pki ? { pki: { ...base.pki, ...layer.pki } } : {}),
    ...(devOpenListener ? { devOpenListener } : {}),
  };
}

function validatePki(pki: unknown): void {
  if (pki === undefined) return;
  if (typeof pki !== 'object' || pki === null || Array.isArray(pki)) throw new ConfigError('pki must be an object');
  const { masterKeyFile, pkcs11 } = pki as Record<string, unknown>;
  if (masterKeyFile !== undefined && (typeof masterKeyFile !== 'string' || masterKeyFile === '')) {
    throw new ConfigError('pki.masterKeyFile must be the path of a file');
  }
  if (pkcs11 === undefined) return;
  const p = (typeof pkcs11 === 'object' && pkcs11 !== null ? pkcs11 : {}) as Record<string, unknown>;
  if (typeof p.module !== 'string' || p.module === '' || typeof p.tokenLabel !== 'string' || p.tokenLabel === '') {
    throw new ConfigError('pki.pkcs11 needs module (the PKCS#11 library path) and tokenLabel');
  }
  if (p.pinFile !== undefined && (typeof p.pinFile !== 'string' || p.pinFile === '')) {
    throw new ConfigError('pki.pkcs11.pinFile must be the path of a file');
  }
}

function validate(c: Config): Config {
  if (!LOG_LEVELS.includes(c.logLevel)) throw new ConfigError(`logLevel: '${c.logLevel}' is not one of ${LOG_LEVELS.join(', ')}`);
  for (const [name, l] of [['mqtt', c.mqtt], ['http', c.http], ['api', c.api]] as const) {
    port(`${name}.port`, String(l.port));
    if (typeof l.host !== 'string' || l.host === '') throw new ConfigError(`${name}.host must be a host name or address`);
  }
  clientCertificateMode('http.clientCertificates', c.http.clientCertificates);
  if (typeof c.mqttLimits !== 'object' || c.mqttLimits === null || Array.isArray(c.mqttLimits)) {
    throw new ConfigError('mqttLimits must be an object of limit names and numbers');
  }
  for (const [name, value] of Object.entries(c.mqttLimits)) {
    if (typeof value !== 'number') throw new ConfigError(`mqttLimits.${name}: '${String(value)}' is not a number`);
  }
  if (Boolean(c.tls.certFile) !== Boolean(c.tls.keyFile)) throw new ConfigError('tls.certFile and tls.keyFile go together');
  validatePki(c.pki);
  validateCertificateFiles(c.tls.certificates);
  let mqtt = c.mqtt;
  if (mqtt.alpn !== undefined) {
    if (typeof mqtt.alpn !== 'object' || mqtt.alpn === null) throw new ConfigError('mqtt.alpn must be an object { host, port }');
    port('mqtt.alpn.port', String(mqtt.alpn.port));
    const host = mqtt.alpn.host ?? mqtt.host;
    if (typeof host !== 'string' || host === '') throw new ConfigError('mqtt.alpn.host must be a host name or address');
    mqtt = { ...mqtt, alpn: { host, port: mqtt.alpn.port } };
  }
  if (c.devOpenListener !== undefined) {
    try {
      checkLoopbackListener('devOpenListener', c.devOpenListener);
    } catch (e) {
      throw e instanceof ListenAddressError ? new ConfigError(e.message) : e;
    }
  }
  return { ...c, mqtt, dataDir: resolve(c.dataDir) };
}

function validateCertificateFiles(list: unknown): void {
  if (list === undefined) return;
  if (!Array.isArray(list)) throw new ConfigError('tls.certificates must be a list of { certFile, keyFile }');
  list.forEach((entry: unknown, i) => {
    const e = entry as Partial<CertificateFiles> | null;
    if (typeof e !== 'object' || e === null || typeof e.certFile !== 'string' || e.certFile === '' || typeof e.keyFile !== 'string' || e.keyFile === '') {
      throw new ConfigError(`tls.certificates[${i}] must name a certFile and a keyFile`);
    }
  });
}

export function loadConfig(sources: ConfigSources = {}): Config {
  const env = sources.env ?? process.env;
  const file = sources.file ?? env.KEYWAY_CONFIG;
  let config = defaults();
  if (file) config = merge(config, fromFile(file));
  config = merge(config, fromEnv(env));
  if (sources.overrides) config = merge(config, sources.overrides);
  return validate(config);
}
