/**
 * Packet ids of the QoS 1 messages the broker has in flight towards one device, and how many may
 * be: at most `window` commands, and a device's single pending config besides, which never waits
 * behind other traffic (it may use one slot more, within an MQTT 5 client's receive maximum).
 */

/** What a packet id in flight towards the peer was used for. */
export type InflightKind = 'config' | 'command';

const MAX_PACKET_ID = 0xffff;

export class PacketIdWindow {
  /** Made on first use: most connections never send a QoS 1 message. */
  #inflight: Map<number, InflightKind> | undefined;
  #lastId = 0;
  /** Configs among the ids in flight (at most one per device). */
  #configs = 0;

  constructor(
    /** QoS 1 sends in flight at once: ours, or the client's receive maximum (MQTT 5) less one if lower. */
    private window: number,
    /** The window a config may use (unbounded for MQTT 3.1.1, which announces no receive maximum). */
    private configWindow = Infinity,
  ) {}

  /** The MQTT 5 client's receive maximum: one slot of it stays free for a config. */
  limitTo(receiveMaximum: number): void {
    this.window = Math.min(this.window, Math.max(1, receiveMaximum - 1));
    this.configWindow = receiveMaximum;
  }

  /** A packet id for a message of `kind`, or undefined when too many are unacknowledged. */
  allocate(kind: InflightKind): number | undefined {
    const inflight = (this.#inflight ??= new Map<number, InflightKind>());
    const size = inflight.size;
    if (kind === 'config') {
      if (size >= this.configWindow) return undefined;
    } else if (size - this.#configs >= this.window || size >= this.configWindow) {
      return undefined;
    }
    let id = this.#lastId;
    do id = (id % MAX_PACKET_ID) + 1;
    while (inflight.has(id));
    this.#lastId = id;
    inflight.set(id, kind);
    if (kind === 'config') this.#configs++;
    return id;
  }

  /** Frees `id`; returns what it was used for, or undefined if it was not in flight. */
  release(id: number): InflightKind | undefined {
    const kind = this.#inflight?.get(id);
    if (kind === undefined) return undefined;
    this.#inflight?.delete(id);
    if (kind === 'config') this.#configs--;
    return kind;
  }
}
