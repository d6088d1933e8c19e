/**
 * An outside CA made with the `openssl` command, as an operator's own PKI would be: a root,
 * intermediates, client certificates from CSRs, revocation and CRLs (`openssl ca`). Keys are
 * ECDSA P-256 and written 0600.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface IssuedFiles {
  readonly certPath: string;
  readonly keyPath: string;
  readonly pem: string;
  readonly keyPem: string;
}

const openssl = (args: readonly string[], cwd?: string): string =>
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

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
      'req', '-x509', ...EC_KEY, '-keyout', ca.keyPath, '-out', ca.certPath, '-subj', `/CN=${cn}/O=Outside Tests`, '-days', '3650',
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
    openssl(['req', '-new', ...EC_KEY, '-keyout', keyPath, '-out', csr, '-subj', `/CN=${cn}/O=Outside Tests`]);
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
    const out = join(this.dir, `crl-${++counter}.pem`);
    openssl(['ca', '-batch', '-config', join(this.dir, 'openssl.cnf'), '-gencrl', '-out', out]);
    return readFileSync(out, 'utf8');
  }
}
