/**
 * Keyway's certificate authorities: a root per project and location, intermediates it signs (one
 * per manufacturing batch), device certificates the intermediates issue from CSRs, revocation
 * and CRLs. CA keys stay in their custody (encrypted at rest or in a PKCS#11 token) and are opened
 * only to sign; an opened key must match its CA's certificate before it signs anything.
 */
import { createHash } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import {
  checkRevocationReason,
  formatAuthority,
  type AuthorityName,
  type RevocationReason,
} from '../domain/authorities.js';
import { certificateKey, normalizeSerial, serialKey, type CertificateKey } from '../domain/certificate-keys.js';
import { alreadyExists, failedPrecondition, fieldError, KeywayError, notFound } from '../domain/errors.js';
import { checkResourceId, isResourceId, type LocationName } from '../domain/names.js';
import type { PkiStore, StoredAuthority, StoredCertificate } from '../store/pki-store.js';
import { KeywayIssuerProfiles } from './issuer-profiles.js';
import { AuthorityRevocationSource } from './authority-revocation-source.js';
import { isCaKeyAlgorithm, parseCaKeyAlgorithm } from './ca-algorithms.js';
import { factsOf, fingerprintOf, sha256Hex } from './certificate-facts.js';
import {
  createDeviceCertificate,
  createIntermediateCertificate,
  createRootCertificate,
  distinguishedName,
  publicKeyOf,
  type Issuer,
} from './certificate-profiles.js';
import type { CaKeyCustodies } from './custodies.js';
import { buildCrl } from './crl-builder.js';
import { checkCsr } from './csr-checks.js';
import type { CaKeyAlgorithm } from './key-custody.js';

/** The stored rows this service returns, re-exported so callers (api) need not import store. */
export type { StoredAuthority, StoredCertificate };

const DAY_MS = 86_400_000;
export const ROOT_VALIDITY_DAYS = 3650;
export const INTERMEDIATE_VALIDITY_DAYS = 1825;
export const DEVICE_VALIDITY_DAYS = 365;
const MAX_VALIDITY_DAYS = 36_500;
const MAX_DEVICE_VALIDITY_DAYS = 3650;
/** Issued certificates start a little in the past, for devices whose clock is slightly slow. */
const BACKDATE_MS = 5 * 60_000;
/** PKCS#11 labels are short; longer names are shortened with a hash so the label stays unique. */
const MAX_LABEL = 128;
const MAX_AUTHORITIES = 1000;
/** A batch names a production run; kept to characters that read plainly in a certificate subject. */
const BATCH = /^[A-Za-z0-9][A-Za-z0-9._ -]{0,63}$/;

export interface CreateRootOptions {
  readonly keyAlgorithm?: string;
  readonly validityDays?: number;
  /** Common name of the subject; `Keyway Root CA {id}` by default. */
  readonly commonName?: string;
}

export interface CreateIntermediateOptions extends CreateRootOptions {
  /** The root's id (same project and location). */
  readonly parent: string;
  /** The manufacturing batch this intermediate signs devices for. */
  readonly batch: string;
}

export interface IssueOptions {
  /** Becomes the subject CN; the CSR's CN otherwise. */
  readonly deviceId?: string;
  readonly validityDays?: number;
}

export interface IssuedCertificate {
  readonly certificatePem: string;
  /** normalizeSerial() form. */
  readonly serialNumber: string;
  /** SHA-256 of the DER, lowercase hex. */
  readonly fingerprint: string;
  /** The issuing CA certificates up to and including the root, PEM, nearest first. */
  readonly chain: readonly string[];
  readonly subject: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface Crl {
  readonly der: Buffer;
  readonly pem: string;
  readonly crlNumber: number;
}

export interface CertificateAuthorityServiceOptions {
  readonly store: PkiStore;
  readonly custodies: CaKeyCustodies;
  /** Told of every revocation, with the keys a live connection's chain would hold (bus.publishCertificatesRevoked). */
  readonly onRevoked?: (keys: CertificateKey[], reason: string) => void;
  readonly now?: () => Date;
}

/** What the admin API and CLI call. */
export interface CertificateAuthorities {
  createRoot(parent: LocationName, id: string, options?: CreateRootOptions): Promise<StoredAuthority>;
  createIntermediate(parent: LocationName, id: string, options: CreateIntermediateOptions): Promise<StoredAuthority>;
  list(parent: LocationName): Promise<StoredAuthority[]>;
  describe(name: AuthorityName): Promise<StoredAuthority>;
  revoke(name: AuthorityName, reason?: string): Promise<StoredAuthority>;
  issueFromCsr(name: AuthorityName, csrPem: string, options?: IssueOptions): Promise<IssuedCertificate>;
  revokeCertificate(name: AuthorityName, serialNumber: string, reason?: string): Promise<StoredCertificate>;
  crl(name: AuthorityName): Promise<Crl>;
}

/** The label a CA's key gets in its custody (and the encrypted custody's AAD). */
export function custodyLabel(name: AuthorityName): string {
  const full = formatAuthority(name);
  if (full.length <= MAX_LABEL) return full;
  return `authorities/${name.authority.slice(0, 60)}#${createHash('sha256').update(full).digest('hex').slice(0, 32)}`;
}

function validityDays(field: string, value: number | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max) throw fieldError(field, `must be a whole number of days from 1 to ${max}`);
  return value;
}

function commonNameOf(field: string, value: string | undefined, fallback: string): string {
  if (value === undefined || value === '') return fallback;
  if (value.length > 64 || /[\p{Cc}]/u.test(value)) throw fieldError(field, 'must be 1 to 64 printable characters');
  return value;
}

const minDate = (a: Date, b: Date): Date => (a.getTime() <= b.getTime() ? a : b);

export class CertificateAuthorityService implements CertificateAuthorities {
  readonly revocationSource: AuthorityRevocationSource;
  /** What the device certificates of Keyway's CAs carry, for checking provisioning templates. */
  readonly issuerProfiles: KeywayIssuerProfiles;
  readonly #store: PkiStore;
  readonly #custodies: CaKeyCustodies;
  readonly #onRevoked: (keys: CertificateKey[], reason: string) => void;
  readonly #now: () => Date;

  constructor(o: CertificateAuthorityServiceOptions) {
    this.#store = o.store;
    this.#custodies = o.custodies;
    this.#onRevoked = o.onRevoked ?? (() => undefined);
    this.#now = o.now ?? (() => new Date());
    this.revocationSource = new AuthorityRevocationSource(o.store);
    this.issuerProfiles = new KeywayIssuerProfiles(o.store);
  }

  // ---- CAs ----------------------------------------------------------------------------------

  async createRoot(parent: LocationName, id: string, options: CreateRootOptions = {}): Promise<StoredAuthority> {
    const name = await this.#newName(parent, id);
    const algorithm = parseCaKeyAlgorithm('keyAlgorithm', options.keyAlgorithm);
    const days = validityDays('validityDays', options.validityDays, ROOT_VALIDITY_DAYS, MAX_VALIDITY_DAYS);
    const subject = distinguishedName({ cn: commonNameOf('subject', options.commonName, `Keyway Root CA ${id}`), o: parent.project });
    const now = this.#now();
    const custody = this.#custodies.forNewKeys();
    const { handle, reference } = await custody.generate(algorithm, custodyLabel(name));
    const validity = { notBefore: new Date(now.getTime() - BACKDATE_MS), notAfter: new Date(now.getTime() + days * DAY_MS) };
    const cert = await createRootCertificate(handle, algorithm, subject, validity);
    const facts = factsOf(cert);
    return this.#insert({
      name,
      type: 'ROOT',
      certificatePem: cert.toString('pem'),
      ...facts,
      issuerSpkiSha256: facts.spkiSha256,
      keyAlgorithm: algorithm,
      custodyKind: custody.kind,
      keyReference: reference,
      state: 'ACTIVE',
      createTime: now,
    });
  }

  async createIntermediate(parent: LocationName, id: string, options: CreateIntermediateOptions): Promise<StoredAuthority> {
    const name = await this.#newName(parent, id);
    if (typeof options.batch !== 'string' || !BATCH.test(options.batch)) {
      throw fieldError('batch', 'must be 1 to 64 letters, digits, spaces, dots, dashes or underscores, starting with a letter or digit');
    }
    const algorithm = parseCaKeyAlgorithm('keyAlgorithm', options.keyAlgorithm);
    const days = validityDays('validityDays', options.validityDays, INTERMEDIATE_VALIDITY_DAYS, MAX_VALIDITY_DAYS);
    const rootName: AuthorityName = { ...parent, authority: checkResourceId('parent', options.parent) };
    const root = await this.#get(rootName, 'parent');
    if (root.type !== 'ROOT') throw failedPrecondition(`${formatAuthority(rootName)} is an intermediate; only a root CA signs intermediates`);
    const now = this.#now();
    this.#checkUsable(root, now);
    const issuer = await this.#openIssuer(root);

    const subject = distinguishedName({
      cn: commonNameOf('subject', options.commonName, `Keyway Intermediate CA ${id}`),
      ou: `batch ${options.batch}`,
      o: parent.project,
    });
    const custody = this.#custodies.forNewKeys();
    const { handle, reference } = await custody.generate(algorithm, custodyLabel(name));
    // A CA certificate never outlives the one above it.
    const validity = {
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: minDate(new Date(now.getTime() + days * DAY_MS), root.notAfter),
    };
    const cert = await createIntermediateCertificate(issuer, subject, await publicKeyOf(handle), validity);
    return this.#insert({
      name,
      type: 'INTERMEDIATE',
      parent: root.name.authority,
      batch: options.batch,
      certificatePem: cert.toString('pem'),
      ...factsOf(cert),
      issuerSpkiSha256: root.spkiSha256,
      keyAlgorithm: algorithm,
      custodyKind: custody.kind,
      keyReference: reference,
      state: 'ACTIVE',
      createTime: now,
    });
  }

  list(parent: LocationName): Promise<StoredAuthority[]> {
    return this.#store.listAuthorities(parent, MAX_AUTHORITIES);
  }

  describe(name: AuthorityName): Promise<StoredAuthority> {
    return this.#get(name);
  }

  async revoke(name: AuthorityName, reason?: string): Promise<StoredAuthority> {
    const why = checkRevocationReason('reason', reason);
    const result = await this.#store.revokeAuthority(name, this.#now(), why);
    if (result.status === 'not-found') throw notFound(`Certificate authority ${formatAuthority(name)} not found.`);
    const a = result.record;
    if (result.status === 'revoked') {
      // The CA's own certificate, as the parent's CRL names it; chains through it hold these keys.
      this.#onRevoked(
        [certificateKey(a.derSha256), serialKey(a.issuerSpkiSha256, a.serialNumber)],
        `certificate authority ${formatAuthority(name)} revoked (${why})`,
      );
    }
    return a;
  }

  // ---- device certificates ------------------------------------------------------------------

  async issueFromCsr(name: AuthorityName, csrPem: string, options: IssueOptions = {}): Promise<IssuedCertificate> {
    const ca = await this.#get(name);
    if (ca.type !== 'INTERMEDIATE') {
      throw failedPrecondition(`${formatAuthority(name)} is a root CA; device certificates are issued by an intermediate`);
    }
    const now = this.#now();
    this.#checkUsable(ca, now);
    const root = ca.parent !== undefined ? await this.#store.getAuthority({ ...name, authority: ca.parent }) : undefined;
    if (!root) throw new KeywayError('INTERNAL', `store: intermediate ${formatAuthority(name)} has no parent`);
    this.#checkUsable(root, now);

    const days = validityDays('validityDays', options.validityDays, DEVICE_VALIDITY_DAYS, MAX_DEVICE_VALIDITY_DAYS);
    if (options.deviceId !== undefined) checkResourceId('deviceId', options.deviceId);
    const csr = await checkCsr(csrPem, 'csr');
    const commonName = options.deviceId ?? csr.commonName;
    if (commonName === undefined) throw fieldError('deviceId', 'is required when the request has no subject CN');
    if (!isResourceId(commonName)) throw fieldError('csr', 'the request\'s subject CN is not a valid device id; give deviceId');
    if (csr.spkiSha256 === ca.spkiSha256 || csr.spkiSha256 === root.spkiSha256) {
      throw fieldError('csr', 'the request is for a CA\'s own key');
    }

    const issuer = await this.#openIssuer(ca);
    const validity = {
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: minDate(new Date(now.getTime() + days * DAY_MS), ca.notAfter),
    };
    const cert = await createDeviceCertificate(issuer, commonName, csr.publicKey, csr.keyType, validity);
    const facts = factsOf(cert);
    const stored: StoredCertificate = {
      authority: name,
      serialNumber: facts.serialNumber,
      issuerSpkiSha256: ca.spkiSha256,
      derSha256: facts.derSha256,
      subject: facts.subject,
      ...(options.deviceId !== undefined ? { deviceId: options.deviceId } : {}),
      notBefore: facts.notBefore,
      notAfter: facts.notAfter,
      certificatePem: cert.toString('pem'),
      createTime: now,
    };
    const inserted = await this.#store.insertCertificate(stored);
    // 128 random bits: a repeat means something is badly wrong, not bad luck.
    if (inserted !== 'created') throw new KeywayError('INTERNAL', `store: certificate insert ${inserted}`);
    return {
      certificatePem: stored.certificatePem,
      serialNumber: stored.serialNumber,
      fingerprint: fingerprintOf(stored.derSha256),
      chain: [ca.certificatePem, root.certificatePem],
      subject: stored.subject,
      notBefore: stored.notBefore,
      notAfter: stored.notAfter,
    };
  }

  async revokeCertificate(name: AuthorityName, serialNumber: string, reason?: string): Promise<StoredCertificate> {
    const why = checkRevocationReason('reason', reason);
    let serial: string;
    try {
      serial = normalizeSerial(serialNumber);
    } catch {
      throw fieldError('serialNumber', 'must be a hexadecimal serial number');
    }
    await this.#get(name);
    const result = await this.#store.revokeCertificate(name, serial, this.#now(), why);
    if (result.status === 'not-found') {
      throw notFound(`Certificate ${serial} was not issued by ${formatAuthority(name)}.`);
    }
    const c = result.record;
    if (result.status === 'revoked') {
      this.#onRevoked(
        [certificateKey(c.derSha256), serialKey(c.issuerSpkiSha256, c.serialNumber)],
        `certificate ${c.serialNumber} of ${formatAuthority(name)} revoked (${why})`,
      );
    }
    return c;
  }

  // ---- CRLs ---------------------------------------------------------------------------------

  async crl(name: AuthorityName): Promise<Crl> {
    const ca = await this.#get(name);
    if (ca.state !== 'ACTIVE') {
      throw failedPrecondition(`${formatAuthority(name)} is revoked and signs nothing; its parent's CRL lists it`);
    }
    const [certificates, children] = await Promise.all([
      this.#store.listRevokedCertificates(name),
      this.#store.listRevokedChildren(name),
    ]);
    const issuer = await this.#openIssuer(ca);
    const crlNumber = await this.#store.takeCrlNumber(name);
    if (crlNumber === undefined) throw notFound(`Certificate authority ${formatAuthority(name)} not found.`);
    const entries = [...certificates, ...children].map((r) => ({
      serialNumber: r.serialNumber,
      revocationDate: r.revokeTime ?? this.#now(),
      reason: r.revokeReason ?? ('UNSPECIFIED' as RevocationReason),
    }));
    const crl = await buildCrl(issuer, crlNumber, entries, this.#now());
    const der = Buffer.from(crl.rawData);
    // RFC 7468 §5 labels CRLs "X509 CRL", which is what OpenSSL reads.
    const pem = `-----BEGIN X509 CRL-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '')}\n-----END X509 CRL-----\n`;
    return { der, pem, crlNumber };
  }

  // ---- helpers ------------------------------------------------------------------------------

  async #newName(parent: LocationName, id: string): Promise<AuthorityName> {
    const name: AuthorityName = { ...parent, authority: checkResourceId('id', id) };
    if (id.length > 63) throw fieldError('id', 'must be at most 63 characters');
    if (await this.#store.getAuthority(name)) throw alreadyExists(`Certificate authority ${formatAuthority(name)} already exists.`);
    return name;
  }

  async #get(name: AuthorityName, field?: string): Promise<StoredAuthority> {
    const a = await this.#store.getAuthority(name);
    if (a) return a;
    const message = `Certificate authority ${formatAuthority(name)} not found.`;
    throw field ? new KeywayError('NOT_FOUND', message, [{ field, description: 'no such certificate authority' }]) : notFound(message);
  }

  #checkUsable(a: StoredAuthority, now: Date): void {
    if (a.state !== 'ACTIVE') throw failedPrecondition(`${formatAuthority(a.name)} is revoked and issues nothing`);
    if (a.notAfter.getTime() <= now.getTime()) throw failedPrecondition(`${formatAuthority(a.name)} expired on ${a.notAfter.toISOString()}`);
  }

  async #insert(a: StoredAuthority): Promise<StoredAuthority> {
    const result = await this.#store.insertAuthority(a);
    if (result === 'exists') throw alreadyExists(`Certificate authority ${formatAuthority(a.name)} already exists.`);
    if (result === 'parent-not-found') throw notFound(`Certificate authority ${formatAuthority({ ...a.name, authority: a.parent ?? '' })} not found.`);
    return a;
  }

  /** The CA's key from its custody, checked against its certificate before it signs anything. */
  async #openIssuer(a: StoredAuthority): Promise<Issuer> {
    if (!isCaKeyAlgorithm(a.keyAlgorithm)) throw new KeywayError('INTERNAL', `store: unknown key algorithm ${a.keyAlgorithm}`);
    const algorithm: CaKeyAlgorithm = a.keyAlgorithm;
    const handle = await this.#custodies.ofKind(a.custodyKind).open(a.keyReference, algorithm, custodyLabel(a.name));
    const spki = await handle.crypto.subtle.exportKey('spki', handle.keys.publicKey);
    if (sha256Hex(spki) !== a.spkiSha256) {
      throw failedPrecondition(`the key custody holds a key for ${formatAuthority(a.name)} that does not match its certificate`);
    }
    return { certificate: new x509.X509Certificate(a.certificatePem), handle, algorithm };
  }
}
