/**
 * The admin API over the real device manager and a throw-away SQLite store, for tests of the
 * API, its client and the CLI.
 */
import { timingSafeEqual } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { LocalBus } from '../bus/local-bus.js';
import { testAuthorities } from '../pki/authority-test-bed.js';
import type { CertificateAuthorityService } from '../pki/certificate-authority-service.js';
import { DeviceManagerService } from '../registry/device-manager-service.js';
import { ServiceAccountService } from '../registry/service-accounts.js';
import { PolicyService } from '../registry/policy-service.js';
import { openSqliteStore } from '../store/sqlite-store.js';
import { createAdminApi } from './admin-api.js';

export const TEST_ADMIN_TOKEN = 'kw-test-admin-token-0123456789abcdef';

export interface TestStack {
  readonly api: FastifyInstance;
  readonly manager: DeviceManagerService;
  /** Keyway's CAs, keys encrypted under a throw-away KEK; revocations go to `bus`. */
  readonly authorities: CertificateAuthorityService;
  readonly bus: LocalBus;
  /** Device policies over the same store and bus. */
  readonly policies: PolicyService;
  /** Service accounts; API keys made here are accepted by `api`. */
  readonly accounts: ServiceAccountService;
  readonly dir: string;
  close(): Promise<void>;
}

export const verifyTestToken = (token: string): boolean => {
  const a = Buffer.from(token);
  const b = Buffer.from(TEST_ADMIN_TOKEN);
  return a.length === b.length && timingSafeEqual(a, b);
};

export async function startTestStack(options: { https?: { cert: string; key: string }; dir?: string } = {}): Promise<TestStack> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'keyway-api-')));
  const store = await openSqliteStore(join(dir, 'keyway.db'));
  const bus = new LocalBus();
  const logger = pino({ level: 'silent' });
  const manager = new DeviceManagerService({ store, bus, logger });
  const { service: authorities } = testAuthorities(store.pki, (keys, reason) => bus.publishCertificatesRevoked({ keys, reason }));
  const accounts = new ServiceAccountService({ store: store.accounts });
  const policies = new PolicyService({ store, bus, logger });
  const api = await createAdminApi({
    manager,
    authorities,
    accounts,
    policies,
    verifyAdminToken: verifyTestToken,
    logger,
    ...(options.https ? { https: options.https } : {}),
  });
  return {
    api,
    manager,
    authorities,
    bus,
    accounts,
    policies,
    dir,
    close: async () => {
      await api.close();
      await accounts.close();
      await manager.close();
      await bus.close();
      await store.close();
      if (!options.dir) await rm(dir, { recursive: true, force: true });
    },
  };
}
