/**
 * The server certificates every TLS listener serves (MQTT, MQTT by ALPN, admin API): the
 * operator's chains from files, or the development CA's ECDSA and RSA certificates. Operator
 * files are watched (fs.watch on their directories, since certificate tools replace files by
 * renaming, plus a periodic check of their mtimes where events get lost) and reloaded, debounced,
 * without a restart: new handshakes get the new chain, established connections keep theirs. A bad
 * new file is logged and the old certificates stay.
 */
import { createSecureContext } from 'node:tls';
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { CertificateFiles, Config } from '../config/config.js';
import { secureContextOptions, type ServerCredentials } from '../mqtt/listener.js';
import { ensureDevelopmentPki } from '../pki/development-ca.js';
import { checkServerChain, checkServerChainSet, type ServerChain } from '../pki/server-chain.js';

export interface LoadedCertificates {
  readonly credentials: ServerCredentials & { readonly cert: readonly string[]; readonly key: readonly string[] };
  readonly chains: readonly ServerChain[];
  /** Set when the development CA issued them: its certificate, which clients must trust. */
  readonly developmentCaPath?: string;
}

/** The operator's certificate files from the configuration: the list, then the shorthand. */
export function operatorCertificateFiles(config: Config): CertificateFiles[] {
  const files = [...(config.tls.certificates ?? [])];
  if (config.tls.certFile && config.tls.keyFile) files.push({ certFile: config.tls.certFile, keyFile: config.tls.keyFile });
  return files.map((f) => ({ certFile: resolve(f.certFile), keyFile: resolve(f.keyFile) }));
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Reads and checks the operator's chains; throws with a message naming the file at fault. */
export async function loadOperatorCertificates(files: readonly CertificateFiles[], now = new Date()): Promise<LoadedCertificates> {
  const chains: ServerChain[] = [];
  for (const f of files) {
    const [cert, key] = await Promise.all([readText(f.certFile), readText(f.keyFile)]);
    chains.push(checkServerChain(cert, key, now, `${f.certFile} / ${f.keyFile}`));
  }
  checkServerChainSet(chains);
  return fromChains(chains);
}

export async function loadDevelopmentCertificates(config: Config): Promise<LoadedCertificates> {
  const pki = await ensureDevelopmentPki(config.dataDir, config.hostnames);
  const now = new Date();
  const chains = [
    checkServerChain(pki.certPem, pki.keyPem, now, pki.certPath),
    checkServerChain(pki.rsaCertPem, pki.rsaKeyPem, now, pki.rsaCertPath),
  ];
  return { ...fromChains(chains), developmentCaPath: pki.caCertPath };
}

function fromChains(chains: readonly ServerChain[]): LoadedCertificates {
  const credentials = { cert: chains.map((c) => c.certPem), key: chains.map((c) => c.keyPem) };
  // What OpenSSL itself refuses (an unsupported curve, say) fails here, before any listener sees it.
  createSecureContext(secureContextOptions(credentials));
  return { credentials, chains };
}

export interface ReloaderOptions {
  /** Quiet time after the last change before reloading (a tool writes cert and key one by one). */
  readonly debounceMs?: number;
  /** How often mtimes are compared, for filesystems where watch events get lost. */
  readonly pollMs?: number;
}

/**
 * Reloads operator certificates when their files change, and on demand (SIGHUP). `apply` installs
 * new credentials on every listener; it is only called with a checked set.
 */
export class CertificateReloader {
  readonly #files: readonly CertificateFiles[];
  readonly #apply: (loaded: LoadedCertificates) => void;
  readonly #log: Logger;
  readonly #debounceMs: number;
  readonly #pollMs: number;
  readonly #watchers: FSWatcher[] = [];
  #poll: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #stamps = new Map<string, string>();
  #reloading: Promise<boolean> = Promise.resolve(true);
  #closed = false;

  constructor(files: readonly CertificateFiles[], apply: (loaded: LoadedCertificates) => void, log: Logger, options: ReloaderOptions = {}) {
    this.#files = files;
    this.#apply = apply;
    this.#log = log;
    this.#debounceMs = options.debounceMs ?? 500;
    this.#pollMs = options.pollMs ?? 30_000;
  }

  #paths(): string[] {
    return this.#files.flatMap((f) => [f.certFile, f.keyFile]);
  }

  async start(): Promise<void> {
    this.#stamps = await this.#readStamps();
    const names = new Map<string, Set<string>>();
    for (const path of this.#paths()) {
      const dir = dirname(path);
      if (!names.has(dir)) names.set(dir, new Set());
      names.get(dir)?.add(basename(path));
    }
    for (const [dir, files] of names) {
      try {
        const watcher = watch(dir, { persistent: false }, (_event, name) => {
          if (name === null || files.has(name.toString())) this.#schedule();
        });
        watcher.on('error', (e) => this.#log.warn({ err: e.message, dir }, 'cannot watch certificate directory; relying on the periodic check'));
        this.#watchers.push(watcher);
      } catch (e) {
        this.#log.warn({ err: (e as Error).message, dir }, 'cannot watch certificate directory; relying on the periodic check');
      }
    }
    this.#poll = setInterval(() => void this.#checkStamps(), this.#pollMs);
    this.#poll.unref();
  }

  /** Reloads now; resolves with whether new certificates are being served. */
  reload(reason = 'requested'): Promise<boolean> {
    this.#reloading = this.#reloading.then(() => this.#reloadNow(reason));
    return this.#reloading;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#debounce);
    clearInterval(this.#poll);
    for (const watcher of this.#watchers) watcher.close();
  }

  #schedule(): void {
    if (this.#closed) return;
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => void this.reload('files changed'), this.#debounceMs);
    this.#debounce.unref();
  }

  async #readStamps(): Promise<Map<string, string>> {
    const stamps = new Map<string, string>();
    for (const path of this.#paths()) {
      const info = await stat(path).catch(() => undefined);
      stamps.set(path, info ? `${info.ino}:${info.size}:${info.mtimeMs}` : 'missing');
    }
    return stamps;
  }

  async #checkStamps(): Promise<void> {
    const stamps = await this.#readStamps();
    if ([...stamps].some(([path, stamp]) => this.#stamps.get(path) !== stamp)) this.#schedule();
  }

  async #reloadNow(reason: string): Promise<boolean> {
    if (this.#closed) return false;
    this.#stamps = await this.#readStamps();
    let loaded: LoadedCertificates;
    try {
      loaded = await loadOperatorCertificates(this.#files);
    } catch (e) {
      this.#log.error({ err: (e as Error).message, reason }, 'server certificates not reloaded; the previous ones are still served');
      return false;
    }
    try {
      this.#apply(loaded);
    } catch (e) {
      this.#log.error({ err: (e as Error).message, reason }, 'server certificates not reloaded; the previous ones are still served');
      return false;
    }
    this.#log.info({ reason, certificates: describeChains(loaded.chains) }, 'server certificates reloaded');
    return true;
  }
}

/** For log lines: what is served, never a key. */
export const describeChains = (chains: readonly ServerChain[]): Array<Record<string, string>> =>
  chains.map((c) => ({ keyType: c.keyType, subject: c.subject, notAfter: c.notAfter.toISOString(), sha256: c.fingerprint256 }));
