import assert from 'node:assert/strict';
import type { TestServer } from './server.js';
import type { DeviceKeys } from './devices.js';

export const PROJECT = 'demo';
export const REGION = 'europe-west1';
export const locationPath = `/v1/projects/${PROJECT}/locations/${REGION}`;
export const registryPath = (registry: string): string => `${locationPath}/registries/${registry}`;
export const devicePathUrl = (registry: string, device: string): string => `${registryPath(registry)}/devices/${device}`;

export async function createRegistry(ts: TestServer, id: string, body: Record<string, unknown> = {}): Promise<void> {
  const res = await ts.api('POST', `${locationPath}/registries`, { id, ...body });
  assert.equal(res.status, 200, JSON.stringify(res.body));
}

export async function createDevice(
  ts: TestServer,
  registry: string,
  id: string,
  keys: DeviceKeys | DeviceKeys[],
  body: Record<string, unknown> = {},
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
): Promise<any> {
  const credentials = (Array.isArray(keys) ? keys : [keys]).map((k) => k.credential);
  const res = await ts.api('POST', `${registryPath(registry)}/devices`, { id, credentials, ...body });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
}

export { eventually } from './eventually.js';
