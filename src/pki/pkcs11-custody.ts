/**
 * CA keys kept in a PKCS#11 token (a hardware security module, a smart card, SoftHSM2 in tests).
 * The key pair is generated inside the token as token objects; the private key is sensitive and
 * non-extractable from birth, so the token signs and nobody ever holds the key. The store keeps
 * only a reference (token label, CKA_ID, CKA_LABEL). Signing goes through node-webcrypto-p11, a
 * WebCrypto implementation over the token, whose keys @peculiar/x509 signs with directly.
 */
import { createHash, createPublicKey, randomBytes, timingSafeEqual, verify as verifySignature } from 'node:crypto';
import { resolve } from 'node:path';
import * as graphene from 'graphene-pk11';
import pkcs11 from 'pkcs11js';
import { Crypto as P11Crypto, CryptoKey as P11CryptoKey } from 'node-webcrypto-p11';
import { failedPrecondition, fieldError, KeywayError } from '../domain/errors.js';
import { CA_KEY_ALGORITHMS, importParams, isCaKeyAlgorithm, signingAlgorithm } from './ca-algorithms.js';
import type { CaKeyAlgorithm, CaKeyHandle, KeyCustody } from './key-custody.js';

export interface Pkcs11CustodyOptions {
  /** Path of the PKCS#11 module (shared library), e.g. /usr/lib/softhsm/libsofthsm2.so. */
  readonly module: string;
  /** CKA_LABEL of the token (CK_TOKEN_INFO.label) that keeps the CA keys. */
  readonly tokenLabel: string;
  /** User PIN of that token. */
  readonly pin: string;
}

/** What the store keeps for a key in a token: where to find it, never anything secret. */
export interface Pkcs11KeyReference {
  readonly kind: 'pkcs11';
  readonly token: string;
  /** CKA_ID of the key pair, hex. */
  readonly id: string;
  /** CKA_LABEL of the key pair. */
  readonly label: string;
}

// DER of the P-256 (prime256v1) object identifier, the CKA_EC_PARAMS of a P-256 key.
const P256_PARAMS = Buffer.from('06082a8648ce3d030107', 'hex');
const RSA_EXPONENT = Buffer.from([0x01, 0x00, 0x01]);
const KEY_ID_BYTES = 16;
const MAX_LABEL_LENGTH = 255;

interface AlgorithmSpec {
  readonly keyType: graphene.KeyType;
  readonly mechanism: graphene.KeyGenMechanism;
  /** RSA only; EC keys are P-256. */
  readonly modulusBits?: number;
}

const EC_P256: AlgorithmSpec = { keyType: graphene.KeyType.EC, mechanism: graphene.KeyGenMechanism.EC };
const rsa = (modulusBits: number): AlgorithmSpec => ({
  keyType: graphene.KeyType.RSA,
  mechanism: graphene.KeyGenMechanism.RSA,
  modulusBits,
});
const ALGORITHMS: Record<CaKeyAlgorithm, AlgorithmSpec> = {
  ECDSA_P256: EC_P256,
  RSA_2048: rsa(2048),
  RSA_3072: rsa(3072),
  RSA_4096: rsa(4096),
};

function algorithmSpec(algorithm: CaKeyAlgorithm): AlgorithmSpec {
  if (typeof algorithm !== 'string' || !isCaKeyAlgorithm(algorithm)) {
    throw fieldError('algorithm', `must be one of ${CA_KEY_ALGORITHMS.join(', ')}`);
  }
  return ALGORITHMS[algorithm];
}

// ---------------------------------------------------------------------------------------------
// The module and its login are process-wide in PKCS#11 (C_Initialize once per process; a login
// covers every session of the application on that token), so custodies opened on the same module
// and token share them and the last one to close logs out and finalizes.

interface SharedToken {
  readonly slot: graphene.Slot;
  readonly pinDigest: Buffer;
  users: number;
  /** The session that performed C_Login; logging out goes through it. */
  loginSession: graphene.Session;
}

interface SharedModule {
  readonly module: graphene.Module;
  users: number;
  readonly tokens: Map<string, SharedToken>;
}

const modules = new Map<string, SharedModule>();

function pkcs11Code(error: unknown): number | undefined {
  return error instanceof pkcs11.Pkcs11Error ? error.code : undefined;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function acquireModule(path: string): SharedModule {
  const existing = modules.get(path);
  if (existing) {
    existing.users += 1;
    return existing;
  }
  let module: graphene.Module;
  try {
    module = graphene.Module.load(path, 'keyway-ca');
  } catch (error) {
    throw failedPrecondition(`Cannot load the PKCS#11 module ${path}: ${describe(error)}`);
  }
  try {
    module.initialize();
  } catch (error) {
    if (pkcs11Code(error) !== pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      safely(() => module.close());
      throw failedPrecondition(`Cannot initialize the PKCS#11 module ${path}: ${describe(error)}`);
    }
  }
  const shared: SharedModule = { module, users: 1, tokens: new Map() };
  modules.set(path, shared);
  return shared;
}

function releaseModule(path: string, shared: SharedModule): void {
  shared.users -= 1;
  if (shared.users > 0) return;
  modules.delete(path);
  safely(() => shared.module.finalize());
  safely(() => shared.module.close());
}

function safely(action: () => void): void {
  try {
    action();
  } catch {
    // Teardown of a module or session that is already gone: nothing left to release.
  }
}

function findSlot(shared: SharedModule, path: string, tokenLabel: string): graphene.Slot {
  const slots = shared.module.getSlots(true);
  const labels: string[] = [];
  const matches: graphene.Slot[] = [];
  for (let i = 0; i < slots.length; i++) {
    const slot = slots.items(i);
    const token = slot.getToken();
    if (!(token.flags & graphene.TokenFlag.TOKEN_INITIALIZED)) continue;
    labels.push(token.label);
    if (token.label === tokenLabel) matches.push(slot);
  }
  if (matches.length > 1) {
    throw failedPrecondition(`Several PKCS#11 tokens are labelled "${tokenLabel}" in ${path}; give each token a unique label`);
  }
  const slot = matches[0];
  if (!slot) {
    const present = labels.length ? labels.map((l) => `"${l}"`).join(', ') : 'none';
    throw failedPrecondition(`No PKCS#11 token labelled "${tokenLabel}" in ${path} (tokens present: ${present})`);
  }
  return slot;
}

function login(session: graphene.Session, tokenLabel: string, pin: string): void {
  try {
    session.login(pin, graphene.UserType.USER);
  } catch (error) {
    const code = pkcs11Code(error);
    if (code === pkcs11.CKR_PIN_INCORRECT || code === pkcs11.CKR_PIN_LEN_RANGE) {
      throw failedPrecondition(`PKCS#11 login to token "${tokenLabel}" failed: wrong PIN`);
    }
    if (code === pkcs11.CKR_PIN_LOCKED) {
      throw failedPrecondition(`PKCS#11 login to token "${tokenLabel}" failed: the user PIN is locked`);
    }
    if (code === pkcs11.CKR_USER_ALREADY_LOGGED_IN) return;
    throw failedPrecondition(`PKCS#11 login to token "${tokenLabel}" failed: ${describe(error)}`);
  }
}

function sameDigest(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

// ---------------------------------------------------------------------------------------------
// References

export function parsePkcs11Reference(reference: string): Pkcs11KeyReference {
  // A stored reference that does not parse is damaged data, not a caller's argument.
  const invalid = (why: string): KeywayError => failedPrecondition(`The stored key reference is not a PKCS#11 key reference: ${why}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(reference);
  } catch {
    throw invalid('not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalid('not a JSON object');
  const { kind, token, id, label } = parsed as Record<string, unknown>;
  if (kind !== 'pkcs11') throw invalid('kind must be "pkcs11"');
  if (typeof token !== 'string' || token.length === 0 || token.length > 32) throw invalid('token must be a token label');
  if (typeof id !== 'string' || !/^(?:[0-9a-f]{2}){1,64}$/.test(id)) throw invalid('id must be hex');
  if (typeof label !== 'string' || label.length > MAX_LABEL_LENGTH) throw invalid('label must be text');
  return { kind, token, id, label };
}

// ---------------------------------------------------------------------------------------------
// The custody

export async function openPkcs11Custody(options: Pkcs11CustodyOptions): Promise<KeyCustody> {
  if (typeof options.module !== 'string' || options.module.trim() === '') {
    throw fieldError('pki.pkcs11.module', 'must be the path of a PKCS#11 module');
  }
  if (typeof options.tokenLabel !== 'string' || options.tokenLabel === '' || options.tokenLabel.length > 32) {
    throw fieldError('pki.pkcs11.tokenLabel', 'must be the label of a token (1 to 32 characters)');
  }
  if (typeof options.pin !== 'string' || options.pin === '') {
    throw fieldError('pki.pkcs11.pin', 'must be the user PIN of the token');
  }
  const path = resolve(options.module);
  const { tokenLabel, pin } = options;
  const pinDigest = createHash('sha256').update(pin).digest();

  const shared = acquireModule(path);
  let session: graphene.Session | undefined;
  let token: SharedToken | undefined;
  try {
    const slot = findSlot(shared, path, tokenLabel);
    const tokenFlags = slot.getToken().flags;
    if (!(tokenFlags & graphene.TokenFlag.USER_PIN_INITIALIZED)) {
      throw failedPrecondition(`PKCS#11 token "${tokenLabel}" has no user PIN; initialize it first`);
    }
    session = slot.open(graphene.SessionFlag.SERIAL_SESSION | graphene.SessionFlag.RW_SESSION);
    token = shared.tokens.get(tokenLabel);
    if (token) {
      // Already logged in by another custody of this process: C_Login would not check the PIN,
      // so compare it with the one that logged in.
      if (!sameDigest(token.pinDigest, pinDigest)) {
        throw failedPrecondition(`PKCS#11 login to token "${tokenLabel}" failed: wrong PIN`);
      }
      token.users += 1;
    } else {
      login(session, tokenLabel, pin);
      token = { slot, pinDigest, users: 1, loginSession: session };
      shared.tokens.set(tokenLabel, token);
    }
  } catch (error) {
    if (session) safely(() => session?.close());
    releaseModule(path, shared);
    throw error;
  }
  return new Pkcs11Custody(path, shared, token, session, tokenLabel);
}

class Pkcs11Custody implements KeyCustody {
  readonly kind = 'pkcs11' as const;
  private readonly crypto: P11Crypto;
  private closed = false;

  constructor(
    private readonly path: string,
    private readonly shared: SharedModule,
    private readonly token: SharedToken,
    private readonly session: graphene.Session,
    private readonly tokenLabel: string,
  ) {
    this.crypto = new P11Crypto({ session });
  }

  async generate(algorithm: CaKeyAlgorithm, label: string): Promise<{ handle: CaKeyHandle; reference: string }> {
    this.assertOpen();
    const spec = algorithmSpec(algorithm);
    if (typeof label !== 'string' || label.trim() === '' || label.length > MAX_LABEL_LENGTH) {
      throw fieldError('label', `must be 1 to ${MAX_LABEL_LENGTH} characters`);
    }
    const id = randomBytes(KEY_ID_BYTES);
    const common = { token: true, id, label, keyType: spec.keyType };
    const publicTemplate: graphene.ITemplate = {
      ...common,
      class: graphene.ObjectClass.PUBLIC_KEY,
      private: false,
      verify: true,
      encrypt: false,
      wrap: false,
      derive: false,
      ...(spec.modulusBits ? { modulusBits: spec.modulusBits, publicExponent: RSA_EXPONENT } : { paramsEC: P256_PARAMS }),
    };
    // Sensitive and never extractable from birth: the token sets CKA_ALWAYS_SENSITIVE and
    // CKA_NEVER_EXTRACTABLE, which is what proves the key was never outside it.
    const privateTemplate: graphene.ITemplate = {
      ...common,
      class: graphene.ObjectClass.PRIVATE_KEY,
      private: true,
      sensitive: true,
      extractable: false,
      sign: true,
      decrypt: false,
      unwrap: false,
      derive: false,
    };
    try {
      // The callback form runs C_GenerateKeyPair off the event loop (RSA takes a while).
      await new Promise<void>((done, fail) => {
        this.session.generateKeyPair(spec.mechanism, publicTemplate, privateTemplate, (error) =>
          error ? fail(error) : done(),
        );
      });
    } catch (error) {
      throw new KeywayError('INTERNAL', `The PKCS#11 token "${this.tokenLabel}" could not generate a ${algorithm} key: ${describe(error)}`);
    }
    const reference: Pkcs11KeyReference = { kind: 'pkcs11', token: this.tokenLabel, id: id.toString('hex'), label };
    const handle = await this.load(reference, algorithm);
    return { handle, reference: JSON.stringify(reference) };
  }

  async open(reference: string, algorithm: CaKeyAlgorithm, label: string): Promise<CaKeyHandle> {
    this.assertOpen();
    const parsed = parsePkcs11Reference(reference);
    algorithmSpec(algorithm);
    // The reference names the key it was generated for: one copied to another CA does not open.
    if (parsed.label !== label) {
      throw failedPrecondition(`The stored key reference names key "${parsed.label}", not the key of "${label}"`);
    }
    if (parsed.token !== this.tokenLabel) {
      throw failedPrecondition(
        `The CA key is kept in PKCS#11 token "${parsed.token}" but Keyway is configured for token "${this.tokenLabel}"`,
      );
    }
    return this.load(parsed, algorithm);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const token = this.token;
    token.users -= 1;
    if (token.users === 0) {
      this.shared.tokens.delete(this.tokenLabel);
      safely(() => token.loginSession.logout());
    }
    safely(() => this.session.close());
    releaseModule(this.path, this.shared);
  }

  private assertOpen(): void {
    if (this.closed) throw failedPrecondition('The PKCS#11 key custody is closed');
  }

  private findKey(objectClass: graphene.ObjectClass, id: Buffer): graphene.Key[] {
    const found = this.session.find({ class: objectClass, token: true, id });
    const keys: graphene.Key[] = [];
    for (let i = 0; i < found.length; i++) keys.push(found.items(i).toType<graphene.Key>());
    return keys;
  }

  private async load(reference: Pkcs11KeyReference, algorithm: CaKeyAlgorithm): Promise<CaKeyHandle> {
    const spec = algorithmSpec(algorithm);
    const id = Buffer.from(reference.id, 'hex');
    const where = `key "${reference.label}" (CKA_ID ${reference.id}) in PKCS#11 token "${this.tokenLabel}"`;
    const privates = this.findKey(graphene.ObjectClass.PRIVATE_KEY, id);
    const publics = this.findKey(graphene.ObjectClass.PUBLIC_KEY, id);
    if (privates.length === 0 || publics.length === 0) {
      throw new KeywayError('NOT_FOUND', `No ${privates.length ? 'public' : 'private'} ${where}`);
    }
    if (privates.length > 1 || publics.length > 1) {
      throw failedPrecondition(`Several key pairs share the CKA_ID of the ${where}`);
    }
    const privateObject = privates[0] as graphene.Key;
    const publicObject = publics[0] as graphene.Key;
    this.assertAlgorithm(privateObject, publicObject, spec, algorithm, where);
    // Refuse a key that could be read out of the token: the custody's promise would not hold.
    const guard = privateObject.getAttribute({ sensitive: null, extractable: null, sign: null });
    if (guard.sensitive !== true || guard.extractable !== false) {
      throw failedPrecondition(`The private ${where} is extractable or not sensitive; it cannot hold a CA key`);
    }
    if (guard.sign !== true) throw failedPrecondition(`The private ${where} may not sign`);

    const storage = this.crypto.keyStorage;
    const params = importParams(algorithm);
    const privateKey = await storage.getItem(P11CryptoKey.getID(privateObject), params, false, ['sign']);
    const publicKey = await storage.getItem(P11CryptoKey.getID(publicObject), params, true, ['verify']);
    await this.assertPair(privateKey, publicKey, algorithm, where);
    return {
      keys: { privateKey, publicKey } as unknown as CryptoKeyPair,
      crypto: this.crypto as unknown as Crypto,
    };
  }

  private assertAlgorithm(
    privateObject: graphene.Key,
    publicObject: graphene.Key,
    spec: AlgorithmSpec,
    algorithm: CaKeyAlgorithm,
    where: string,
  ): void {
    const mismatch = (): KeywayError => failedPrecondition(`The ${where} is not a ${algorithm} key`);
    if (privateObject.type !== spec.keyType || publicObject.type !== spec.keyType) throw mismatch();
    if (spec.modulusBits) {
      const modulus = publicObject.getAttribute(pkcs11.CKA_MODULUS);
      if (modulus.length * 8 !== spec.modulusBits) throw mismatch();
    } else {
      // By number: graphene names CKA_EC_PARAMS both paramsEC and paramsECDSA.
      const params = publicObject.getAttribute(pkcs11.CKA_EC_PARAMS);
      if (!params.equals(P256_PARAMS)) throw mismatch();
    }
  }

  /** Signs a random challenge in the token and verifies it outside: the two halves belong together. */
  private async assertPair(privateKey: P11CryptoKey, publicKey: P11CryptoKey, algorithm: CaKeyAlgorithm, where: string): Promise<void> {
    const challenge = randomBytes(32);
    let signature: ArrayBuffer;
    try {
      signature = await this.crypto.subtle.sign(signingAlgorithm(algorithm), privateKey as unknown as CryptoKey, challenge);
    } catch (error) {
      throw failedPrecondition(`The ${where} cannot sign: ${describe(error)}`);
    }
    const spki = Buffer.from(await this.crypto.subtle.exportKey('spki', publicKey as unknown as CryptoKey));
    const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    const ok = ALGORITHMS[algorithm].modulusBits
      ? verifySignature('sha256', challenge, key, Buffer.from(signature))
      : verifySignature('sha256', challenge, { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature));
    if (!ok) throw failedPrecondition(`The private and public halves of the ${where} do not match`);
  }
}
