import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  parseAuthMethod,
  parseDuration,
  parseEventNotificationConfig,
  parseLogLevel,
  parseMetadata,
  parsePublicKeySpec,
  publicKeyFormat,
} from './arg-parsers.js';
import { UsageError } from './io.js';
import { toTable, toYaml } from './output.js';

describe('--public-key', () => {
  it('parses path, type and an optional expiration time in any order', () => {
    assert.deepEqual(parsePublicKeySpec('path=./dev1/public.pem,type=es256'), { path: './dev1/public.pem', type: 'es256' });
    assert.deepEqual(parsePublicKeySpec('type=rsa-x509-pem,expiration-time=2030-01-01T00:00:00Z,path=/k/cert.pem'), {
      path: '/k/cert.pem',
      type: 'rsa-x509-pem',
      expirationTime: '2030-01-01T00:00:00Z',
    });
  });

  it('refuses missing, unknown, repeated and malformed parts', () => {
    for (const bad of ['type=es256', 'path=k.pem', 'path=k.pem,type=dsa', 'path=k.pem,type=es256,colour=red', 'path=a,path=b,type=es256', 'k.pem', '=x,type=es256']) {
      assert.throws(() => parsePublicKeySpec(bad), UsageError, bad);
    }
  });

  it('lets the file decide between key and certificate for es256 and rs256', () => {
    const key = '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n';
    const cert = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
    assert.equal(publicKeyFormat('es256', key), 'ES256_PEM');
    assert.equal(publicKeyFormat('es256', cert), 'ES256_X509_PEM');
    assert.equal(publicKeyFormat('rs256', key), 'RSA_PEM');
    assert.equal(publicKeyFormat('rs256', cert), 'RSA_X509_PEM');
    assert.equal(publicKeyFormat('rsa-pem', cert), 'RSA_PEM', 'explicit types are taken as given');
    assert.equal(publicKeyFormat('es256-x509-pem', key), 'ES256_X509_PEM');
  });
});

describe('--metadata', () => {
  it('merges repeated flags, later keys winning, values keeping their "="', () => {
    assert.deepEqual(parseMetadata(['site=north,floor=2', 'floor=3,expr=a=b']), { site: 'north', floor: '3', expr: 'a=b' });
    assert.deepEqual(parseMetadata(['empty=']), { empty: '' });
  });

  it('refuses pairs without a key', () => {
    assert.throws(() => parseMetadata(['novalue']), UsageError);
    assert.throws(() => parseMetadata(['=v']), UsageError);
  });
});

describe('other flag values', () => {
  it('parses event notification configs', () => {
    assert.deepEqual(parseEventNotificationConfig('topic=projects/p/topics/t,subfolder=alerts'), {
      pubsubTopicName: 'projects/p/topics/t',
      subfolderMatches: 'alerts',
    });
    assert.throws(() => parseEventNotificationConfig('subfolder=alerts'), UsageError);
    assert.throws(() => parseEventNotificationConfig('topic=t,queue=q'), UsageError);
  });

  it('parses durations', () => {
    assert.equal(parseDuration('--lifetime', '60m'), 3600);
    assert.equal(parseDuration('--lifetime', '24h'), 86400);
    assert.equal(parseDuration('--lifetime', '90s'), 90);
    assert.equal(parseDuration('--lifetime', '120'), 120);
    for (const bad of ['0m', '1d', '-5m', 'soon', '']) assert.throws(() => parseDuration('--lifetime', bad), UsageError, bad);
  });

  it('maps friendly enum spellings and refuses others', () => {
    assert.equal(parseLogLevel('debug'), 'DEBUG');
    assert.equal(parseAuthMethod('association-only'), 'ASSOCIATION_ONLY');
    assert.throws(() => parseLogLevel('log-level-unspecified'), UsageError);
    assert.throws(() => parseAuthMethod('trust-me'), UsageError);
  });
});

describe('output', () => {
  it('renders YAML with quoted ambiguous scalars and PEM blocks', () => {
    const yaml = toYaml({
      id: 'dev1',
      numId: '2820826361193189',
      blocked: true,
      credentials: [{ publicKey: { format: 'ES256_PEM', key: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n' } }],
      metadata: { 'odd key': "it's: here" },
      config: { version: '1' },
      empty: [],
    });
    assert.equal(
      yaml,
      [
        'id: dev1',
        "numId: '2820826361193189'",
        'blocked: true',
        'credentials:',
        '- publicKey:',
        '    format: ES256_PEM',
        '    key: |',
        '      -----BEGIN PUBLIC KEY-----',
        '      AAAA',
        '      -----END PUBLIC KEY-----',
        'metadata:',
        "  odd key: 'it''s: here'",
        'config:',
        "  version: '1'",
        'empty: []',
        '',
      ].join('\n'),
    );
  });

  it('aligns table columns', () => {
    const t = toTable([{ a: 'x', b: 'long value' }, { a: 'longer', b: '' }], [
      { header: 'A', value: (r) => r.a },
      { header: 'B', value: (r) => r.b },
    ]);
    assert.equal(t, 'A       B\nx       long value\nlonger\n');
  });
});
