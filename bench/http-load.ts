/**
 * The HTTP bridge scenario: devices post telemetry to `…:publishEvent` as Google's sample clients
 * do (JSON body, base64 data, the device's JWT on every request), each over its own keep-alive
 * HTTPS connection with one request in flight. Bodies and headers are built before the clock starts.
 */
import { Agent, request } from 'node:https';

export interface HttpDevice {
  /** `projects/…/devices/{id}` */
  readonly path: string;
  readonly token: string;
}

export interface HttpLoadOptions {
  readonly port: number;
  readonly ca: string;
  readonly devices: readonly HttpDevice[];
  readonly payloadBytes: number;
  readonly warmupSeconds: number;
  readonly seconds: number;
}

export interface HttpLoadResult {
  readonly ok: number;
  readonly failed: number;
  readonly firstError?: string;
  /** Successful requests per second in the measured window. */
  readonly requestsPerSecond: number;
  /** Latencies (ms) of the requests completed in the measured window, sorted. */
  readonly latencies: Float64Array;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs the load; `onWindow` is called at the start and the end of the measured window (for CPU and delivery samples). */
export async function httpLoad(o: HttpLoadOptions, onWindow: (phase: 'start' | 'end') => void): Promise<HttpLoadResult> {
  const body = JSON.stringify({ binaryData: Buffer.alloc(o.payloadBytes, 7).toString('base64') });
  let measuring = false;
  let stopped = false;
  let ok = 0;
  let failed = 0;
  let firstError: string | undefined;
  const latencies: number[] = [];

  const loop = async (device: HttpDevice): Promise<void> => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const options = {
      host: '127.0.0.1',
      servername: 'localhost',
      port: o.port,
      method: 'POST',
      path: `/v1/${device.path}:publishEvent`,
      ca: o.ca,
      agent,
      headers: {
        authorization: `Bearer ${device.token}`,
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'cache-control': 'no-cache',
      },
    };
    try {
      while (!stopped) {
        const t0 = performance.now();
        const status = await new Promise<number>((resolve, reject) => {
          const req = request(options, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          });
          req.on('error', reject);
          req.end(body);
        }).catch((e: Error) => {
          firstError ??= e.message;
          return 0;
        });
        if (!measuring) continue;
        if (status === 200) {
          ok++;
          latencies.push(performance.now() - t0);
        } else {
          failed++;
          firstError ??= `HTTP ${status}`;
          if (status === 0) await sleep(100);
        }
      }
    } finally {
      agent.destroy();
    }
  };

  const loops = o.devices.map((d) => loop(d));
  await sleep(o.warmupSeconds * 1000);
  measuring = true;
  onWindow('start');
  const t0 = performance.now();
  await sleep(o.seconds * 1000);
  measuring = false;
  const elapsed = (performance.now() - t0) / 1000;
  onWindow('end');
  stopped = true;
  await Promise.all(loops);
  return {
    ok,
    failed,
    ...(firstError ? { firstError } : {}),
    requestsPerSecond: ok / elapsed,
    latencies: new Float64Array(latencies).sort(),
  };
}
