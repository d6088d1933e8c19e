/**
 * A registry's MQTT access changed (bus RegistryAccessChanged): MQTT switched off, or a kind of
 * credential no longer accepted. What the registry would now refuse at CONNECT ends at once, as a
 * revocation does: the device connections (MQTT 5: DISCONNECT 0x98), and the devices attached to
 * its gateways, each detached and the gateway told on its errors topic. A gateway the registry no
 * longer admits is itself disconnected, after its devices' notices.
 */
import type { RegistryAccessChanged } from '../bus/bus.js';
import type { AuthenticatedDevice, GatewayDelegatedDevice } from '../registry/device-manager.js';
import { mqttAccessRefusal } from '../registry/device-plane-rules.js';
import type { Connection } from './connection.js';
import type { BrokerContext } from './context.js';
import { detachedBecause, endAttachment } from './gateway-detach.js';
import { REASON_V5 } from './reason-codes.js';

/**
 * Why the registry, as `event` leaves it, refuses `device` over MQTT, or undefined when it admits
 * it. A device attached to a gateway stands on its own token if it gave one, otherwise on the
 * gateway's connection.
 */
export function accessRefusal(event: RegistryAccessChanged, device: AuthenticatedDevice | GatewayDelegatedDevice): string | undefined {
  if (device.method === 'gateway') return mqttAccessRefusal(event, device.token !== undefined ? 'jwt' : undefined);
  return mqttAccessRefusal(event, device.method);
}

export interface AccessApplied {
  /** Device connections ended. */
  readonly disconnected: number;
  /** Devices detached from gateways (those of gateways that were disconnected included). */
  readonly detached: number;
}

const sentence = (reason: string): string => `${reason.charAt(0).toUpperCase()}${reason.slice(1)}.`;

export function applyRegistryAccess(ctx: BrokerContext, event: RegistryAccessChanged): AccessApplied {
  const prefix = `${event.registry}/devices/`;
  const refused: Array<{ readonly conn: Connection; readonly device: string; readonly reason: string }> = [];
  let detached = 0;
  // A scan over every device connection of the broker: they are indexed by device, not by
  // registry, and this runs only on an admin action (never per packet or per connection).
  for (const [key, conn] of ctx.devices.entries()) {
    if (!key.startsWith(prefix)) continue;
    const state = conn.state;
    if (state.phase !== 'device') continue;
    const { session } = state;
    // An attached device belongs to its gateway's registry.
    for (const attachment of [...(session.attachments?.values() ?? [])]) {
      const reason = accessRefusal(event, attachment.device);
      if (reason !== undefined && endAttachment(attachment, `registry access changed: ${reason}`, detachedBecause(sentence(reason)))) detached++;
    }
    const reason = accessRefusal(event, session.device);
    if (reason !== undefined) refused.push({ conn, device: key, reason });
  }
  // Closed after the scan: a close releases the device's entry from the table being read.
  for (const { conn, device, reason } of refused) {
    conn.log.info({ device, reason }, 'device disconnected: its registry no longer admits it over MQTT');
    conn.close(`registry access changed: ${reason}`, { destroy: true, code: REASON_V5.administrativeAction });
  }
  return { disconnected: refused.length, detached };
}
