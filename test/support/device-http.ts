/**
 * A device's side of the HTTP bridge, as Google's sample clients call it (reference §6.2, §6.4):
 * `https://{host}/v1/{device path}:publishEvent|:setState`, `…/config?local_version=N`, the JWT
 * as `authorization: Bearer`, JSON bodies with `content-type: application/json` and
 * `cache-control: no-cache`. node:https, so that the test's CA is trusted without touching the
 * process's trust store.
 */
import { httpsJson, type JsonResponse } from './https-json.js';

export type DeviceHttpResponse = JsonResponse;

export interface DeviceHttpOptions {
  /** Extra or replacing headers; `null` removes one (e.g. `authorization`). */
  readonly headers?: Record<string, string | null>;
  /** A raw body, sent as it is (a string is sent as UTF-8). */
  readonly raw?: string | Buffer;
}

export class DeviceHttp {
  constructor(
    readonly port: number,
    readonly ca: string,
  ) {}

  /** `path` is everything after `/v1/`. */
  call(method: 'GET' | 'POST', path: string, token: string | undefined, body?: unknown, o: DeviceHttpOptions = {}): Promise<DeviceHttpResponse> {
    const payload = o.raw ?? (body === undefined ? undefined : JSON.stringify(body));
    const headers: Record<string, string | number> = {
      'cache-control': 'no-cache',
      ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
      ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
    };
    for (const [name, value] of Object.entries(o.headers ?? {})) {
      if (value === null) delete headers[name];
      else headers[name] = value;
    }
    return httpsJson({ port: this.port, method, path: `/v1/${path}`, ca: this.ca, headers, agent: false }, payload);
  }

  publishEvent(devicePath: string, token: string | undefined, body: unknown, o?: DeviceHttpOptions): Promise<DeviceHttpResponse> {
    return this.call('POST', `${devicePath}:publishEvent`, token, body, o);
  }

  setState(devicePath: string, token: string | undefined, body: unknown, o?: DeviceHttpOptions): Promise<DeviceHttpResponse> {
    return this.call('POST', `${devicePath}:setState`, token, body, o);
  }

  /** `query` as the Python sample writes it: `local_version=N`. */
  getConfig(devicePath: string, token: string | undefined, query = 'local_version=0', o?: DeviceHttpOptions): Promise<DeviceHttpResponse> {
    return this.call('GET', `${devicePath}/config?${query}`, token, undefined, o);
  }
}

/** What Python's `base64.urlsafe_b64encode` gives: URL-safe alphabet, padded. */
export const urlsafeB64 = (data: Buffer | string): string => Buffer.from(data).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
