/**
 * Where the CLI finds the API and what it acts on. Each setting comes from, in order: a flag,
 * a `KEYWAY_*` environment variable, the local data directory (default ./keyway-data): the
 * credential (a service account's API key from `--api-key-file` or `KEYWAY_API_KEY`, preferred
 * when given, else the admin token in `admin-token`; neither is ever a flag's value), the CA in `pki/ca.crt`, and the remembered project and region
 * in `cli.json` (like gcloud's active configuration).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { AdminClient } from '../api/client.js';
import { DEFAULT_PORTS } from '../config/config.js';
import {
  isLocationId,
  isProjectId,
  type DeviceName,
  type LocationName,
  type RegistryName,
} from '../domain/names.js';
import { HintError, UsageError, type CliIo } from './io.js';

export const DEFAULT_DATA_DIR = 'keyway-data';
export const DEFAULT_API_URL = `https://localhost:${DEFAULT_PORTS.api}`;
export const SETTINGS_FILE = 'cli.json';
export const ADMIN_TOKEN_FILE = 'admin-token';
export const CA_FILE = join('pki', 'ca.crt');

/** The flags every command that talks to the API accepts. */
export interface ContextFlags {
  readonly project?: string;
  readonly region?: string;
  readonly apiUrl?: string;
  readonly caFile?: string;
  readonly dataDir?: string;
  readonly adminTokenFile?: string;
  /** A file holding a service account's API key (`kwk_…`), used instead of the admin token. */
  readonly apiKeyFile?: string;
}

/** What `keyway config set` remembers. */
export interface CliSettings {
  project?: string;
  region?: string;
}

export const SETTING_NAMES = ['project', 'region'] as const;
export type SettingName = (typeof SETTING_NAMES)[number];

export function checkSetting(name: SettingName, value: string): string {
  if (name === 'project' && !isProjectId(value)) throw new UsageError(`'${value}' is not a valid project id`);
  if (name === 'region' && !isLocationId(value)) throw new UsageError(`'${value}' is not a valid region (e.g. europe-west1)`);
  return value;
}

export class CliContext {
  constructor(
    readonly io: CliIo,
    readonly flags: ContextFlags,
  ) {}

  path(p: string): string {
    return resolve(this.io.cwd, p);
  }

  get dataDir(): string {
    return this.path(this.flags.dataDir ?? (this.io.env.KEYWAY_DATA_DIR || DEFAULT_DATA_DIR));
  }

  get apiUrl(): string {
    return this.flags.apiUrl ?? (this.io.env.KEYWAY_API_URL || DEFAULT_API_URL);
  }

  get settingsPath(): string {
    return join(this.dataDir, SETTINGS_FILE);
  }

  async readSettings(): Promise<CliSettings> {
    let text: string;
    try {
      text = await readFile(this.settingsPath, 'utf8');
    } catch {
      return {};
    }
    try {
      const parsed = JSON.parse(text) as Record<string, unknown>;
      const out: CliSettings = {};
      for (const name of SETTING_NAMES) if (typeof parsed[name] === 'string') out[name] = parsed[name];
      return out;
    } catch {
      throw new HintError(`${this.settingsPath} is not valid JSON; fix or delete it`);
    }
  }

  async writeSettings(settings: CliSettings): Promise<void> {
    await mkdir(this.dataDir, { recursive: true, mode: 0o700 });
    await writeFile(this.settingsPath, `${JSON.stringify(settings, null, 2)}\n`, { mode: 0o644 });
  }

  /** Saves the project and region given as flags, as `registries create` does. */
  async rememberFlags(): Promise<void> {
    const given: CliSettings = {
      ...(this.flags.project ? { project: this.flags.project } : {}),
      ...(this.flags.region ? { region: this.flags.region } : {}),
    };
    if (Object.keys(given).length === 0) return;
    await this.writeSettings({ ...(await this.readSettings()), ...given });
  }

  async setting(name: SettingName): Promise<string> {
    const env = name === 'project' ? this.io.env.KEYWAY_PROJECT : this.io.env.KEYWAY_REGION;
    const value = this.flags[name] ?? (env || (await this.readSettings())[name]);
    if (!value) {
      throw new UsageError(`no ${name} given: pass --${name} ${name === 'project' ? 'PROJECT' : 'REGION'}, set KEYWAY_${name.toUpperCase()}, or run 'keyway config set ${name} VALUE'`);
    }
    return checkSetting(name, value);
  }

  async location(): Promise<LocationName> {
    return { project: await this.setting('project'), location: await this.setting('region') };
  }

  async registry(id: string): Promise<RegistryName> {
    return { ...(await this.location()), registry: id };
  }

  async device(registry: string, device: string): Promise<DeviceName> {
    return { ...(await this.registry(registry)), device };
  }

  /** The bearer credential: an API key when one is given, else the admin token. */
  async #credential(): Promise<string> {
    if (this.flags.apiKeyFile !== undefined && this.flags.adminTokenFile !== undefined) {
      throw new UsageError('give --api-key-file or --admin-token-file, not both');
    }
    if (this.flags.apiKeyFile !== undefined) return this.#apiKeyFromFile(this.path(this.flags.apiKeyFile));
    const fromEnv = this.flags.adminTokenFile ? undefined : this.io.env.KEYWAY_API_KEY?.trim();
    if (fromEnv) return fromEnv;
    return this.#adminToken();
  }

  async #apiKeyFromFile(file: string): Promise<string> {
    let key: string;
    try {
      key = (await readFile(file, 'utf8')).trim();
    } catch {
      throw new HintError(`no API key: ${file} is not readable`);
    }
    if (!key) throw new HintError(`no API key: ${file} is empty`);
    return key;
  }

  async #adminToken(): Promise<string> {
    const fromEnv = this.flags.adminTokenFile ? undefined : this.io.env.KEYWAY_ADMIN_TOKEN?.trim();
    if (fromEnv) return fromEnv;
    const file = this.flags.adminTokenFile ? this.path(this.flags.adminTokenFile) : join(this.dataDir, ADMIN_TOKEN_FILE);
    let token: string;
    try {
      token = (await readFile(file, 'utf8')).trim();
    } catch {
      throw new HintError(
        `no admin token: ${file} is not readable; set KEYWAY_ADMIN_TOKEN, or pass --data-dir with the directory 'keyway serve' uses`,
      );
    }
    if (!token) throw new HintError(`no admin token: ${file} is empty`);
    return token;
  }

  async #caPem(): Promise<string | undefined> {
    const explicit = this.flags.caFile ?? (this.io.env.KEYWAY_CA_FILE || undefined);
    const file = explicit ? this.path(explicit) : join(this.dataDir, CA_FILE);
    if (!explicit && !existsSync(file)) return undefined; // trust the system store
    try {
      return await readFile(file, 'utf8');
    } catch {
      throw new HintError(`cannot read the CA certificate ${file}; pass --ca-file or set KEYWAY_CA_FILE`);
    }
  }

  async client(): Promise<AdminClient> {
    const token = await this.#credential();
    const ca = await this.#caPem();
    try {
      return new AdminClient({ baseUrl: this.apiUrl, token, ...(ca ? { ca } : {}) });
    } catch (e) {
      throw new UsageError(`--api-url: ${(e as Error).message}`);
    }
  }

  /** Where the token would come from, for `config list` (never the token itself). */
  describeTokenSource(): string {
    if (this.flags.apiKeyFile !== undefined) return `${this.path(this.flags.apiKeyFile)} (API key)`;
    if (!this.flags.adminTokenFile && this.io.env.KEYWAY_API_KEY) return 'KEYWAY_API_KEY';
    if (!this.flags.adminTokenFile && this.io.env.KEYWAY_ADMIN_TOKEN) return 'KEYWAY_ADMIN_TOKEN';
    const file = this.flags.adminTokenFile ? this.path(this.flags.adminTokenFile) : join(this.dataDir, ADMIN_TOKEN_FILE);
    return existsSync(file) ? file : `(none: ${file} does not exist)`;
  }

  describeCaSource(): string {
    const explicit = this.flags.caFile ?? (this.io.env.KEYWAY_CA_FILE || undefined);
    if (explicit) return this.path(explicit);
    const file = join(this.dataDir, CA_FILE);
    return existsSync(file) ? file : '(system trust store)';
  }
}
