/**
 * One deferred flush for every connection that queued outbound bytes in this turn of the event
 * loop. Packets a connection sends while the loop handles a round of reads (deliveries from many
 * devices to one subscriber, PUBACKs for a batch of PUBLISHes) become one socket write: one TLS
 * record run and one syscall instead of one per packet.
 */

export interface Flushable {
  flushOutbound(): void;
}

let pending: Flushable[] = [];
let scheduled = false;

/** Flushes `target` after the current round of I/O callbacks (setImmediate). Call once per batch. */
export function flushSoon(target: Flushable): void {
  pending.push(target);
  if (scheduled) return;
  scheduled = true;
  setImmediate(flushAll);
}

function flushAll(): void {
  scheduled = false;
  const batch = pending;
  pending = [];
  for (const target of batch) target.flushOutbound();
}
