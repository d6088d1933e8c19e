/**
 * `host:port` listen addresses (`127.0.0.1:1884`, `[::1]:1884`, `localhost:1884`) and the loopback
 * rule of the development open listener, which serves anonymous clients in plaintext and so must
 * never be reachable from another machine.
 */
import { isIPv4, isIPv6 } from 'node:net';

export class ListenAddressError extends Error {
  override readonly name = 'ListenAddressError';
}

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** Parses `host:port`; IPv6 addresses go in brackets. Port 0 picks a free port. */
export function parseListenAddress(name: string, text: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  const host = m?.[1] ?? m?.[2];
  if (!m || !host) {
    throw new ListenAddressError(`${name}: '${text}' is not HOST:PORT (for example 127.0.0.1:1884 or [::1]:1884)`);
  }
  const port = Number(m[3]);
  if (port > 65535) throw new ListenAddressError(`${name}: '${m[3]}' is not a TCP port`);
  if (m[1] !== undefined && !isIPv6(host)) throw new ListenAddressError(`${name}: '${host}' in brackets is not an IPv6 address`);
  return { host, port };
}

/** 127.0.0.0/8, ::1 (and ::ffff:127.x.y.z) or the name `localhost`; never any other name, which DNS could point anywhere. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost') return true;
  if (isIPv4(h)) return h.startsWith('127.');
  if (isIPv6(h)) {
    const mapped = /^(?:0{0,4}:){0,5}:?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h)?.[1];
    if (mapped) return mapped.startsWith('127.');
    const groups = expandIPv6(h);
    return groups !== undefined && groups.slice(0, 7).every((g) => g === 0) && groups[7] === 1;
  }
  return false;
}

function expandIPv6(h: string): number[] | undefined {
  if (h.includes('.')) return undefined;
  const [head = '', tail] = h.split('::');
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  const zeros = tail === undefined ? 0 : 8 - left.length - right.length;
  const groups = [...left, ...Array<number>(zeros).fill(0), ...right];
  return groups.length === 8 ? groups : undefined;
}

/** Throws unless `address` is a loopback host and a TCP port. */
export function checkLoopbackListener(name: string, address: ListenAddress): ListenAddress {
  if (typeof address !== 'object' || address === null || typeof address.host !== 'string' || address.host === '') {
    throw new ListenAddressError(`${name} must be { "host": "127.0.0.1", "port": 1884 } or "127.0.0.1:1884"`);
  }
  if (!Number.isInteger(address.port) || address.port < 0 || address.port > 65535) {
    throw new ListenAddressError(`${name}: '${String(address.port)}' is not a TCP port`);
  }
  if (!isLoopbackHost(address.host)) {
    throw new ListenAddressError(
      `${name}: '${address.host}' is not a loopback address; the development open listener accepts anyone in plaintext, ` +
        'so it listens only on 127.0.0.0/8, ::1 or localhost',
    );
  }
  return { host: address.host, port: address.port };
}
