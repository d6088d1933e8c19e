/**
 * Write-behind of device activity timestamps (activity-buffer.ts): what the device plane records
 * on every packet is buffered, written to the store on a timer or as soon as many devices are
 * pending, and merged into the devices the admin API reads.
 */
import type { Logger } from 'pino';
import type { DeviceKey } from '../bus/bus.js';
import { formatDevice } from '../domain/names.js';
import type { Device } from '../domain/resources.js';
import type { Store } from '../store/store.js';
import { ActivityBuffer, withActivity, type Activity } from './activity-buffer.js';
import { deviceNameOfKey } from './device-refs.js';

/** Pending activity for this many devices triggers a write without waiting for the timer. */
const ACTIVITY_FLUSH_THRESHOLD = 5000;

export interface DeviceActivityOptions {
  readonly store: Store;
  readonly logger: Logger;
  /** How often activity is written behind; 1 s by default. */
  readonly flushIntervalMs?: number | undefined;
}

export class DeviceActivity {
  readonly #store: Store;
  readonly #logger: Logger;
  readonly #buffer = new ActivityBuffer();
  readonly #timer: NodeJS.Timeout;
  #closed: Promise<void> | undefined;

  constructor(options: DeviceActivityOptions) {
    this.#store = options.store;
    this.#logger = options.logger;
    this.#timer = setInterval(() => void this.flush(), options.flushIntervalMs ?? 1000);
    this.#timer.unref();
  }

  record(key: DeviceKey, activity: Activity): void {
    // The hot path (every event): the device already has pending activity, so no name to parse.
    if (this.#buffer.update(key, activity)) return;
    const name = deviceNameOfKey(key);
    if (!name) return;
    this.#buffer.record(key, name, activity);
    if (this.#buffer.size >= ACTIVITY_FLUSH_THRESHOLD) void this.flush();
  }

  /** The stored device with what is still pending for it merged in. */
  withPending(device: Device): Device {
    return withActivity(device, this.#buffer.pendingFor(formatDevice(device.name)));
  }

  /** Drops what is pending for a deleted device. */
  forget(key: DeviceKey): void {
    this.#buffer.forget(key);
  }

  /** Writes pending activity now; a failed write is logged and retried with the next. */
  async flush(): Promise<void> {
    try {
      await this.#buffer.flush((updates) => this.#store.recordActivity(updates));
    } catch (e) {
      this.#logger.error({ err: e }, 'writing device activity failed; will retry');
    }
  }

  /** Writes pending activity and stops the timer. Safe to call more than once. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      clearInterval(this.#timer);
      await this.flush();
    })();
    return this.#closed;
  }
}
