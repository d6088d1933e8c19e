/**
 * PoliciesChanged (bus): every live connection of the named devices (of the whole registry when
 * none are named) recompiles its policy and swaps it in. From then on every check uses the new
 * one — the next PUBLISH, SUBSCRIBE and delivery (`receive`) — and what the new policy no longer
 * allows ends now: subscriptions it would refuse are dropped (a device must subscribe again if a
 * later policy allows them back), and a connection whose `connect` is now denied is closed.
 * A device attached to a gateway is treated alike on the gateway's connection: its attachment's
 * policy is swapped, its config and commands subscriptions dropped if now refused, and it is
 * detached (the gateway told) if `connect` is now denied — the gateway's connection stays.
 */
import type { PoliciesChanged } from '../bus/bus.js';
import type { CompiledPolicy } from '../policy/index.js';
import type { Connection } from './connection.js';
import type { BrokerContext } from './context.js';
import type { DeviceSender } from './device-senders.js';
import type { DeviceSession } from './device-session.js';
import type { GatewayAttachment } from './gateway-attachments.js';
import { detachedBecause, endAttachment } from './gateway-detach.js';
import { REASON_V5 } from './reason-codes.js';

/** Compiles running at once for one event: a registry-wide change must not flood the store. */
const CONCURRENCY = 16;

type Target = { readonly conn: Connection; readonly session: DeviceSession } | { readonly attachment: GatewayAttachment };

export async function recompilePolicies(ctx: BrokerContext, connections: Iterable<Connection>, event: PoliciesChanged): Promise<void> {
  const targets: Target[] = [];
  if (event.devices) {
    for (const key of event.devices) {
      const conn = ctx.devices.get(key);
      const state = conn?.state;
      if (conn && state?.phase === 'device' && state.session.registry === event.registry) targets.push({ conn, session: state.session });
      const attachment = ctx.attached.get(key);
      if (attachment && attachment.registry === event.registry) targets.push({ attachment });
    }
  } else {
    for (const conn of connections) {
      const state = conn.state;
      if (state.phase !== 'device' || state.session.registry !== event.registry) continue;
      targets.push({ conn, session: state.session });
      // A gateway attaches only devices of its own registry.
      for (const attachment of state.session.attachments?.values() ?? []) targets.push({ attachment });
    }
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < targets.length) {
      const t = targets[next++] as Target;
      await ('attachment' in t ? recompileAttachment(ctx, t.attachment) : recompileOne(ctx, t.conn, t.session));
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, targets.length) }, worker));
}

async function recompileOne(ctx: BrokerContext, conn: Connection, session: DeviceSession): Promise<void> {
  const epoch = ++session.policyEpoch;
  let policy: CompiledPolicy | undefined;
  try {
    policy = await ctx.policies.compile(session.device, session.certSubject);
  } catch (e) {
    // The old policy stays; the device is closed rather than left under rights that may be gone.
    conn.log.warn({ err: e, device: session.key }, 'recompiling the device policy failed');
    if (conn.isOpen && session.policyEpoch === epoch) conn.close('the device policy could not be recompiled', { level: 'warn', code: REASON_V5.unspecifiedError });
    return;
  }
  // A newer change is being applied, or the connection is gone: this result is stale.
  if (session.policyEpoch !== epoch || !conn.isOpen) return;
  // The device was deleted: its revocation ends the connection.
  if (!policy) return;
  applyPolicy(ctx, conn, session, policy);
}

/** Swaps the policy in and ends what it no longer allows. */
export function applyPolicy(ctx: BrokerContext, conn: Connection, session: DeviceSession, policy: CompiledPolicy): void {
  session.policy = policy;
  if (!policy.can('connect', session.device.name.device)) {
    conn.log.info({ device: session.key }, 'policy no longer allows the device to connect');
    conn.close('the device policy denies connect', { level: 'info', destroy: true, code: REASON_V5.notAuthorized });
    return;
  }
  const dropped: string[] = [];
  const subscriber = session.subscriber;
  if (subscriber) {
    for (const filter of [...subscriber.subscriptions.keys()]) {
      if (policy.canSubscribe(filter)) continue;
      ctx.deviceSpaces.unsubscribe(subscriber, filter);
      dropped.push(filter);
    }
  }
  dropRefusedOwn(session, policy, dropped);
  conn.log.info({ device: session.key, ...(dropped.length > 0 ? { droppedSubscriptions: dropped.length } : {}) }, 'device policy updated');
}

async function recompileAttachment(ctx: BrokerContext, attachment: GatewayAttachment): Promise<void> {
  const epoch = ++attachment.policyEpoch;
  let policy: CompiledPolicy | undefined;
  try {
    policy = await ctx.policies.compile(attachment.device);
  } catch (e) {
    // As for a connection: the device goes rather than stay under rights that may be gone.
    attachment.conn.log.warn({ err: e, device: attachment.key }, 'recompiling the attached device policy failed');
    if (attachment.policyEpoch === epoch) {
      endAttachment(attachment, 'the device policy could not be recompiled', detachedBecause('The device policy could not be applied.'));
    }
    return;
  }
  // A newer change or attach is being applied, or it was detached: this result is stale.
  if (attachment.policyEpoch !== epoch || attachment.ended) return;
  // The device was deleted: its revocation detaches it.
  if (!policy) return;
  applyAttachmentPolicy(attachment, policy);
}

/** Swaps an attachment's policy in and ends what it no longer allows (the gateway's connection stays). */
export function applyAttachmentPolicy(attachment: GatewayAttachment, policy: CompiledPolicy): void {
  attachment.policy = policy;
  const { conn, gateway } = attachment;
  if (!policy.can('connect', attachment.deviceId)) {
    endAttachment(attachment, 'the device policy denies connect', detachedBecause('The device policy no longer allows the device to connect.'));
    return;
  }
  const dropped: string[] = [];
  dropRefusedOwn(attachment, policy, dropped);
  conn.log.info({ gateway: gateway.key, device: attachment.key, ...(dropped.length > 0 ? { droppedSubscriptions: dropped.length } : {}) }, 'attached device policy updated');
}

/** Drops the device's commands and config subscriptions that `policy` refuses, noting them in `dropped`. */
function dropRefusedOwn(device: DeviceSender, policy: CompiledPolicy, dropped: string[]): void {
  const { topics } = device;
  if (device.commandsQos !== undefined && !policy.canSubscribe(topics.commandsFilter)) {
    device.commandsQos = undefined;
    dropped.push(topics.commandsFilter);
  }
  if (device.config.subscribed && !policy.canSubscribe(topics.config)) {
    device.config.unsubscribe();
    dropped.push(topics.config);
  }
}
