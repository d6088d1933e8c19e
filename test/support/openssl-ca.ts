/**
 * openssl as an outside tool, for tests that need certificates made by something other than
 * Keyway, or an outside opinion of what Keyway made:
 * - OpensslCa: an outside CA, as an operator's own PKI would be: a root, intermediates, client
 *   certificates from CSRs, revocation and CRLs (`openssl ca`). Keys are ECDSA P-256, written 0600.
 * - opensslIn(dir): openssl run in a directory, to make device keys and CSRs and to read or
 *   verify certificates and CRLs.
 * Certificates made in-process with exactly the properties a test needs (odd ones included) are
 * test-pki's; a throw-away Keyway CA service is src/pki/authority-test-bed's.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface IssuedFiles {
  readonly certPath: string;
  readonly keyPath: string;
  readonly pem: string;
  readonly keyPem: string;
}

/** `openssl genpkey` arguments of a P-256 key. */
export const EC_KEY = ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'] as const;
/** `openssl genpkey` arguments of an RSA key of `bits`. */
export const RSA_KEY = (bits: number): string[] => ['-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${bits}`];

/** Runs openssl; the exit status and what it printed (stdout, then stderr). */
export function tryOpenssl(args: readonly string[], options: { cwd?: string; input?: string } = {}): { status: number; output: string } {
  const r = spawnSync('openssl', args, { cwd: options.cwd, encoding: 'utf8', ...(options.input !== undefined ? { input: options.input } : {}) });
  return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}

/** Runs openssl; what it printed, or an error with its output when it fails. */
export function openssl(args: readonly string[], options: { cwd?: string; input?: string } = {}): string {
  const r = tryOpenssl(args, options);
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed:\n${r.output}`);
  return r.output;
}

export interface OpensslWorkbench {
  readonly dir: string;
  /** Runs openssl in `dir`; throws with its output when it fails. */
  openssl(args: readonly string[], input?: string): string;
  /** Like openssl() but returns the exit status and output instead of throwing. */
  tryOpenssl(args: readonly string[], input?: string): { status: number; output: string };
  /** Writes `dir/file`; returns its path. */
  write(file: string, text: string | Buffer): Promise<string>;
  read(file: string): Promise<string>;
  /** A key (genpkey arguments, e.g. EC_KEY) in `name.key` and a CSR for it with `subject` in `name.csr`; returns the CSR PEM. */
  csr(name: string, keyArgs: readonly string[], subject: string, extra?: readonly string[]): Promise<string>;
  /**
   * `openssl verify [flags]` of `certificatePem` (written to `name.pem`) against `rootPem`, with
   * `intermediates` untrusted (`name-intermediate.pem`); throws unless it verifies, returns the output.
   */
  verify(name: string, certificatePem: string, rootPem: string, intermediates?: readonly string[], flags?: readonly string[]): Promise<string>;
}

/** openssl run in `dir` (which the caller creates and removes). */
export function opensslIn(dir: string): OpensslWorkbench {
  const run = (args: readonly string[], input?: string): string => openssl(args, { cwd: dir, ...(input !== undefined ? { input } : {}) });
  const write = async (file: string, text: string | Buffer): Promise<string> => {
    await writeFile(join(dir, file), text);
    return join(dir, file);
  };
  return {
    dir,
    openssl: run,
    tryOpenssl: (args, input) => tryOpenssl(args, { cwd: dir, ...(input !== undefined ? { input } : {}) }),
    write,
    read: (file) => readFile(join(dir, file), 'utf8'),
    csr: async (name, keyArgs, subject, extra = []) => {
      run(['genpkey', ...keyArgs, '-out', `${name}.key`]);
      run(['req', '-new', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`, ...extra]);
      return readFile(join(dir, `${name}.csr`), 'utf8');
    },
    verify: async (name, certificatePem, rootPem, intermediates = [], flags = []) => {
      await write(`${name}.pem`, certificatePem);
      await write(`${name}-root.pem`, rootPem);
      if (intermediates.length > 0) await write(`${name}-intermediate.pem`, intermediates.join(''));
      const untrusted = intermediates.length > 0 ? ['-untrusted', `${name}-intermediate.pem`] : [];
      return run(['verify', ...flags, '-CAfile', `${name}-root.pem`, ...untrusted, `${name}.pem`]).trim();
    },
  };
}

/** `openssl req` arguments that make a new P-256 key without a passphrase. */
const NEW_EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** `openssl ca` dates: YYYYMMDDHHMMSSZ. */
const caDate = (d: Date): string => d.toISOString().replace(/[-:T]/g, '').replace(/\.\d{3}Z$/, 'Z');

function config(dir: string): string {
  return `[ ca ]
default_ca = CA_default
[ CA_default ]
dir = ${dir}
database = ${dir}/index.txt
new_certs_dir = ${dir}/newcerts
serial = ${dir}/serial
crlnumber = ${dir}/crlnumber
certificate = ${dir}/ca.crt
private_key = ${dir}/ca.key
default_md = sha256
default_days = 365
default_crl_days = 30
policy = policy_any
unique_subject = no
copy_extensions = none
[ policy_any ]
commonName = supplied
organizationName = optional
countryName = optional
[ v3_leaf ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ v3_ca ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;
}

let counter = 0;

export class OpensslCa implements IssuedFiles {
  private constructor(
    readonly dir: string,
    readonly certPath: string,
    readonly keyPath: string,
  ) {}

  get pem(): string {
    return readFileSync(this.certPath, 'utf8');
  }

  get keyPem(): string {
    return readFileSync(this.keyPath, 'utf8');
  }

  /** A self-signed root CA in a new directory under `parent`. */
  static root(parent: string, cn: string): OpensslCa {
    const dir = OpensslCa.#prepare(parent, cn);
    const ca = new OpensslCa(dir, join(dir, 'ca.crt'), join(dir, 'ca.key'));
    openssl([
      'req', '-x509', ...NEW_EC_KEY, '-keyout', ca.keyPath, '-out', ca.certPath, '-subj', `/CN=${cn}/O=Outside Tests`, '-days', '3650',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    chmodSync(ca.keyPath, 0o600);
    return ca;
  }

  static #prepare(parent: string, cn: string): string {
    const dir = join(parent, `ca-${++counter}-${cn.replace(/[^a-z0-9]/gi, '_')}`);
    mkdirSync(join(dir, 'newcerts'), { recursive: true });
    writeFileSync(join(dir, 'index.txt'), '');
    writeFileSync(join(dir, 'serial'), `${(0x1000 + counter).toString(16)}\n`);
    writeFileSync(join(dir, 'crlnumber'), '01\n');
    writeFileSync(join(dir, 'openssl.cnf'), config(dir));
    return dir;
  }

  /** An intermediate CA (pathlen 0) signed by this one. */
  intermediate(cn: string): OpensslCa {
    const dir = OpensslCa.#prepare(this.dir, cn);
    const sub = new OpensslCa(dir, join(dir, 'ca.crt'), join(dir, 'ca.key'));
    this.#sign(cn, sub.certPath, sub.keyPath, 'v3_ca', {});
    return sub;
  }

  /** A client certificate `CN=cn` from a CSR; `notBefore`/`notAfter` for expired ones. */
  issue(cn: string, validity: { notBefore?: Date; notAfter?: Date } = {}): IssuedFiles {
    const base = join(this.dir, `leaf-${++counter}`);
    this.#sign(cn, `${base}.crt`, `${base}.key`, 'v3_leaf', validity);
    return { certPath: `${base}.crt`, keyPath: `${base}.key`, pem: readFileSync(`${base}.crt`, 'utf8'), keyPem: readFileSync(`${base}.key`, 'utf8') };
  }

  #sign(cn: string, certPath: string, keyPath: string, extensions: string, validity: { notBefore?: Date; notAfter?: Date }): void {
    const csr = `${certPath}.csr`;
    openssl(['req', '-new', ...NEW_EC_KEY, '-keyout', keyPath, '-out', csr, '-subj', `/CN=${cn}/O=Outside Tests`]);
    chmodSync(keyPath, 0o600);
    const dates =
      validity.notBefore || validity.notAfter
        ? ['-startdate', caDate(validity.notBefore ?? new Date(Date.now() - 86_400_000)), '-enddate', caDate(validity.notAfter ?? new Date(Date.now() + 365 * 86_400_000))]
        : ['-days', '365'];
    openssl(['ca', '-batch', '-config', join(this.dir, 'openssl.cnf'), '-extensions', extensions, '-notext', '-in', csr, '-out', certPath, ...dates]);
  }

  /** Marks a certificate this CA issued as revoked in its database (see crl()). */
  revoke(certPath: string): void {
    openssl(['ca', '-batch', '-config', join(this.dir, 'openssl.cnf'), '-revoke', certPath]);
  }

  /** The CA's current CRL, PEM. */
  crl(): string {
    return readFileSync(this.crlFile(), 'utf8');
  }

  /** Writes the CA's current CRL (the next CRL number, from 1) to a new file; returns its path. */
  crlFile(form: 'PEM' | 'DER' = 'PEM'): string {
    const pem = join(this.dir, `crl-${++counter}.pem`);
    openssl(['ca', '-batch', '-config', join(this.dir, 'openssl.cnf'), '-gencrl', '-out', pem]);
    if (form === 'PEM') return pem;
    const der = pem.replace(/\.pem$/, '.der');
    openssl(['crl', '-in', pem, '-outform', 'DER', '-out', der]);
    return der;
  }
}
