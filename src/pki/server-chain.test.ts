import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeywayError } from '../domain/errors.js';
import { issue, makeRoot } from '../../test/support/test-pki.js';
import { checkServerChain, checkServerChainSet } from './server-chain.js';

const SERVER_AUTH = ['1.3.6.1.5.5.7.3.1'];
const DAY = 86_400_000;
const refused = (pattern: RegExp) => (e: unknown) => e instanceof KeywayError && e.status === 'FAILED_PRECONDITION' && pattern.test(e.message);

async function operatorChain(key: 'ec' | 'rsa2048' = 'ec') {
  const root = await makeRoot({ subject: 'CN=Operator Root' });
  const intermediate = await issue(root, { subject: 'CN=Operator Issuing CA', ca: true, pathLength: 0 });
  const leaf = await issue(intermediate, { subject: 'CN=mqtt.example.com', extendedKeyUsage: SERVER_AUTH, key });
  return { root, intermediate, leaf };
}

describe('operator server chains', () => {
  it('accepts a leaf-first chain that matches its key, and says what it is', async () => {
    const { intermediate, leaf } = await operatorChain();
    const chain = checkServerChain(leaf.pem + intermediate.pem, leaf.keyPem, new Date(), 'server.crt');
    assert.equal(chain.keyType, 'ec');
    assert.match(chain.subject, /mqtt\.example\.com/);
    const rsa = await operatorChain('rsa2048');
    assert.equal(checkServerChain(rsa.leaf.pem + rsa.intermediate.pem, rsa.leaf.keyPem, new Date(), 'rsa.crt').keyType, 'rsa');
  });

  it('refuses a certificate that is not the key’s, a wrong order, expiry, a CA as leaf, and junk, naming the file', async () => {
    const { root, intermediate, leaf } = await operatorChain();
    const other = await operatorChain();
    const now = new Date();
    assert.throws(() => checkServerChain(leaf.pem, other.leaf.keyPem, now, 'a.crt'), refused(/a\.crt.*does not belong to the key/));
    assert.throws(() => checkServerChain(leaf.pem + root.pem, leaf.keyPem, now, 'b.crt'), refused(/b\.crt.*did not issue.*leaf first/));
    assert.throws(() => checkServerChain(intermediate.pem + leaf.pem, intermediate.keyPem, now, 'c.crt'), refused(/CA certificate/));
    assert.throws(() => checkServerChain(leaf.pem, leaf.keyPem, new Date(now.getTime() + 400 * DAY), 'd.crt'), refused(/d\.crt.*expired/));
    assert.throws(() => checkServerChain('not a certificate', leaf.keyPem, now, 'e.crt'), refused(/no PEM certificate/));
    assert.throws(() => checkServerChain(leaf.pem, 'not a key', now, 'f.crt'), (e: unknown) => refused(/private key/)(e) && !String(e).includes('not a key'));
    const expired = await issue(intermediate, {
      subject: 'CN=old',
      extendedKeyUsage: SERVER_AUTH,
      notBefore: new Date(now.getTime() - 10 * DAY),
      notAfter: new Date(now.getTime() - DAY),
    });
    assert.throws(() => checkServerChain(expired.pem + intermediate.pem, expired.keyPem, now, 'g.crt'), refused(/certificate 1 .*expired/));
  });

  it('serves at most one ECDSA and one RSA chain', async () => {
    const a = await operatorChain();
    const b = await operatorChain();
    const r = await operatorChain('rsa2048');
    const now = new Date();
    const ec1 = checkServerChain(a.leaf.pem, a.leaf.keyPem, now, 'a');
    const ec2 = checkServerChain(b.leaf.pem, b.leaf.keyPem, now, 'b');
    const rsa = checkServerChain(r.leaf.pem, r.leaf.keyPem, now, 'r');
    checkServerChainSet([ec1, rsa]);
    assert.throws(() => checkServerChainSet([ec1, ec2]), refused(/more than one ECDSA/));
    assert.throws(() => checkServerChainSet([]), refused(/no server certificate/));
  });
});
