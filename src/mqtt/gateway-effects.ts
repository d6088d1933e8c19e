/**
 * What the bus and other connections do to attached devices (reference §1.10): a config push
 * reaches the gateway holding the device; a revocation that would end the device's own
 * connection (blocked, deleted, the credential of the token it attached with gone) detaches it;
 * unbinding a device attached by association, or changing the gateway's auth method, detaches it
 * (all of them, for the auth method); and a device that connects on its own leaves its gateway.
 * Each detachment is told to the gateway on its errors topic, at once.
 */
import type { ConfigPushed, DeviceKey, DeviceRevoked, GatewayBindingChanged } from '../bus/bus.js';
import type { BrokerContext } from './context.js';
import { detachedBecause, endAttachment } from './gateway-detach.js';
import { revokes } from './revocation.js';

export function pushAttachedConfig(ctx: BrokerContext, event: ConfigPushed): void {
  ctx.attached.get(event.device)?.config.pushed(event.version, event.binaryData);
}

const revocationDescription = (event: DeviceRevoked): string => {
  if (event.reason === 'deleted') return 'The device was deleted.';
  if (event.blocked) return 'The device was blocked.';
  return 'The credential the device attached with is no longer valid.';
};

export function revokeAttachment(ctx: BrokerContext, event: DeviceRevoked): void {
  const attachment = ctx.attached.get(event.device);
  if (attachment === undefined || !revokes(event, attachment.device)) return;
  endAttachment(attachment, `device revoked: ${event.reason}`, detachedBecause(revocationDescription(event)));
}

export function applyBindingChange(ctx: BrokerContext, event: GatewayBindingChanged): void {
  if (event.device !== undefined && event.bound) return;
  const state = ctx.devices.get(event.gateway)?.state;
  const attachments = state?.phase === 'device' ? state.session.attachments : undefined;
  if (attachments === undefined) return;
  // An attach being decided now may rest on the binding or the method that just went.
  attachments.associationsChanged();
  if (event.device === undefined) {
    for (const attachment of [...attachments.values()]) {
      endAttachment(attachment, "the gateway's auth method changed", detachedBecause("The gateway's authentication method changed."));
    }
    return;
  }
  const attachment = ctx.attached.get(event.device);
  if (attachment === undefined || attachment.gateway.attachments !== attachments || !attachment.device.byAssociation) return;
  endAttachment(attachment, 'unbound from the gateway', detachedBecause('The device was unbound from the gateway.'));
}

/** The device connected on its own (one connection per device): its attachment ends. */
export function detachConnectedDevice(ctx: BrokerContext, device: DeviceKey): void {
  const attachment = ctx.attached.get(device);
  if (attachment !== undefined) endAttachment(attachment, 'the device connected on its own', detachedBecause('The device connected on its own.'));
}
