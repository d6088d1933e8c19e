/**
 * Activity timestamps (`lastHeartbeatTime`, `lastEventTime`, `lastConfigSendTime`, `lastError*`,
 * `gatewayConfig.lastAccessedGateway*`)
 * change with every packet, so they are kept in memory and written behind in batches, as Cloud
 * IoT Core documented them to be. Readers merge what is still pending so they never see older
 * values than the device produced.
 */
import type { DeviceKey } from '../bus/bus.js';
import type { DeviceName } from '../domain/names.js';
import type { Device, Status } from '../domain/resources.js';
import type { ActivityUpdate } from '../store/store.js';

export interface Activity {
  readonly lastHeartbeatTime?: Date;
  readonly lastEventTime?: Date;
  readonly lastConfigSendTime?: Date;
  readonly lastError?: { readonly time: Date; readonly status: Status };
  /** The gateway (by id) the device last came through. */
  readonly lastAccessedGateway?: { readonly id: string; readonly time: Date };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const later = (a: Date | undefined, b: Date | undefined): Date | undefined =>
  a === undefined ? b : b === undefined || a.getTime() >= b.getTime() ? a : b;

function merge(a: Activity, b: Activity): Activity {
  const out: Mutable<Activity> = {};
  mergeInto(out, a);
  mergeInto(out, b);
  return out;
}

/** Moves every field of `from` that is later than `into`'s into it, in place. */
function mergeInto(into: Mutable<Activity>, from: Activity): void {
  const { lastHeartbeatTime, lastEventTime, lastConfigSendTime, lastError, lastAccessedGateway } = from;
  if (lastHeartbeatTime && later(into.lastHeartbeatTime, lastHeartbeatTime) !== into.lastHeartbeatTime) into.lastHeartbeatTime = lastHeartbeatTime;
  if (lastEventTime && later(into.lastEventTime, lastEventTime) !== into.lastEventTime) into.lastEventTime = lastEventTime;
  if (lastConfigSendTime && later(into.lastConfigSendTime, lastConfigSendTime) !== into.lastConfigSendTime) {
    into.lastConfigSendTime = lastConfigSendTime;
  }
  if (lastError && (into.lastError === undefined || lastError.time.getTime() > into.lastError.time.getTime())) into.lastError = lastError;
  if (lastAccessedGateway && (into.lastAccessedGateway === undefined || lastAccessedGateway.time.getTime() >= into.lastAccessedGateway.time.getTime())) {
    into.lastAccessedGateway = lastAccessedGateway;
  }
}

interface Entry {
  readonly name: DeviceName;
  /** Updated in place: a device publishing thousands of events a second costs no allocation here. */
  readonly activity: Mutable<Activity>;
}

export class ActivityBuffer {
  /** Recorded since the last flush began. */
  #pending = new Map<DeviceKey, Entry>();
  /** Taken by the flush under way; still shown to readers until it is written. */
  #inFlight = new Map<DeviceKey, Entry>();
  #flushing: Promise<void> = Promise.resolve();

  record(key: DeviceKey, name: DeviceName, activity: Activity): void {
    if (!this.update(key, activity)) this.#pending.set(key, { name, activity: { ...activity } });
  }

  /**
   * Merges `activity` into what is already pending for the device and returns true, or returns
   * false when nothing is pending (then `record` must be called with its name). Lets callers
   * resolve a device's name once per flush interval rather than once per event.
   */
  update(key: DeviceKey, activity: Activity): boolean {
    const entry = this.#pending.get(key);
    if (entry === undefined) return false;
    mergeInto(entry.activity, activity);
    return true;
  }

  /** What is recorded for the device and not yet known to be written. */
  pendingFor(key: DeviceKey): Activity | undefined {
    const a = this.#inFlight.get(key)?.activity;
    const b = this.#pending.get(key)?.activity;
    // A copy: pending entries change in place.
    return a && b ? merge(a, b) : a || b ? { ...(a ?? b) } : undefined;
  }

  /** Drops what is pending for a device that no longer exists (a new one may take its id). */
  forget(key: DeviceKey): void {
    this.#pending.delete(key);
    this.#inFlight.delete(key);
  }

  get size(): number {
    return this.#pending.size;
  }

  /**
   * Writes everything pending; flushes never overlap. On failure the batch goes back to pending
   * (under anything newer) and the error is rethrown for the caller to report.
   */
  flush(write: (updates: readonly ActivityUpdate[]) => Promise<void>): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.#pending.size === 0) return;
      this.#inFlight = this.#pending;
      this.#pending = new Map();
      const batch = [...this.#inFlight.values()].map(({ name, activity }) => ({ device: name, ...activity }));
      try {
        await write(batch);
      } catch (e) {
        for (const [key, entry] of this.#inFlight) {
          const newer = this.#pending.get(key);
          if (newer) mergeInto(newer.activity, entry.activity);
          else this.#pending.set(key, entry);
        }
        throw e;
      } finally {
        this.#inFlight = new Map();
      }
    };
    const next = this.#flushing.then(run, run);
    this.#flushing = next.catch(() => undefined);
    return next;
  }
}

/** The stored value or the pending one, whichever is later. */
export function withActivity(stored: Device, pending: Activity | undefined): Device {
  if (!pending) return stored;
  const out: Mutable<Device> = { ...stored };
  const heartbeat = later(stored.lastHeartbeatTime, pending.lastHeartbeatTime);
  const event = later(stored.lastEventTime, pending.lastEventTime);
  const configSend = later(stored.lastConfigSendTime, pending.lastConfigSendTime);
  if (heartbeat) out.lastHeartbeatTime = heartbeat;
  if (event) out.lastEventTime = event;
  if (configSend) out.lastConfigSendTime = configSend;
  if (pending.lastError && (!stored.lastErrorTime || pending.lastError.time.getTime() >= stored.lastErrorTime.getTime())) {
    out.lastErrorTime = pending.lastError.time;
    out.lastErrorStatus = pending.lastError.status;
  }
  const gateway = pending.lastAccessedGateway;
  const storedGatewayTime = stored.gatewayConfig.lastAccessedGatewayTime;
  if (gateway && (!storedGatewayTime || gateway.time.getTime() >= storedGatewayTime.getTime()))
    out.gatewayConfig = { ...stored.gatewayConfig, lastAccessedGatewayId: gateway.id, lastAccessedGatewayTime: gateway.time };
  return out;
}
