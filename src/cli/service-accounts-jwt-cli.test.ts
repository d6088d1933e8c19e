/** `keyway service-accounts public-keys …` and `token`: a backend signs its own JWT and uses it as the API key. */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { cliTestKit } from './cli-test-kit.js';

describe('keyway service-accounts public-keys and token', () => {
  const kit = cliTestKit({ prefix: 'keyway-cli-sa-jwt-', env: { KEYWAY_PROJECT: 'acme', KEYWAY_REGION: 'europe-west1' } });

  test('add, list, token, use it, remove', async () => {
    await kit.ok('registries create fleet');
    await kit.ok('service-accounts create signer --role viewer');
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await writeFile(join(kit.work, 'signer.pub'), pair.publicKey.export({ type: 'spki', format: 'pem' }).toString());
    await writeFile(join(kit.work, 'signer.key'), pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), { mode: 0o600 });

    const added = JSON.parse((await kit.ok('service-accounts public-keys add signer --public-key-file signer.pub --expiration-time 2099-01-01T00:00:00Z --format json')).stdout) as {
      keyId: string;
      publicKey: { format: string };
    };
    assert.equal(added.publicKey.format, 'RSA_PEM');
    assert.match((await kit.ok('service-accounts public-keys list signer')).stdout, new RegExp(`${added.keyId}\\s+RSA_PEM`));
    const refusedPrivate = await kit.cli('service-accounts public-keys add signer --public-key-file signer.key');
    assert.equal(refusedPrivate.code, 2);

    const token = (await kit.ok('service-accounts token --private-key signer.key --account signer --lifetime 30m')).stdout.trim();
    const claims = decodeJwt(token);
    assert.equal(claims.aud, 'acme');
    assert.equal(claims.sub, 'signer');
    assert.equal((claims.exp ?? 0) - (claims.iat ?? 0), 1800);
    assert.equal((await kit.cli('service-accounts token --private-key signer.key --account signer --lifetime 2h')).code, 2, 'more than 1h is a usage error');

    assert.equal((await kit.cli('registries list', { KEYWAY_API_KEY: token })).code, 0, 'the token works as the API key');
    await kit.ok(`service-accounts public-keys remove signer ${added.keyId}`);
    const gone = await kit.cli('registries list', { KEYWAY_API_KEY: token });
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /UNAUTHENTICATED/);
  });
});
