/**
 * Commands (reference §1.8): only a device connected here and subscribed to `commands/#` gets
 * one, published on `/devices/{id}/commands[/{subfolder}]` at its subscription's QoS. Nothing is
 * queued for later. A device attached to a gateway gets it on the gateway's connection, if the
 * gateway subscribed to the device's `commands/#` (reference §1.10).
 */
import type { CommandOutcome, CommandRequest } from '../bus/bus.js';
import { fieldError, KeywayError } from '../domain/errors.js';
import { LIMITS } from '../domain/resources.js';
import type { Connection } from './connection.js';
import type { BrokerContext } from './context.js';
import type { DeviceSession } from './device-session.js';
import { commandSubfolderProblem } from './device-topics.js';
import type { GatewayAttachment } from './gateway-attachments.js';

/** The device's own session on its connection, or its attachment on its gateway's. */
function receiverOf(ctx: BrokerContext, device: string): { readonly conn: Connection; readonly session: DeviceSession | GatewayAttachment } | undefined {
  const conn = ctx.devices.get(device);
  const state = conn?.state;
  if (conn && conn.isOpen && state?.phase === 'device') return { conn, session: state.session };
  const attachment = ctx.attached.get(device);
  if (attachment && attachment.conn.isOpen) return { conn: attachment.conn, session: attachment };
  return undefined;
}

export function deliverCommand(ctx: BrokerContext, request: CommandRequest): CommandOutcome {
  const receiver = receiverOf(ctx, request.device);
  if (receiver === undefined) return 'not-connected';
  const { conn, session } = receiver;
  const qos = session.commandsQos;
  if (qos === undefined) return 'not-subscribed';

  const subfolder = request.subfolder === '' ? undefined : request.subfolder;
  if (subfolder !== undefined) {
    const problem = commandSubfolderProblem(subfolder);
    if (problem) throw fieldError('subfolder', problem);
  }
  if (request.binaryData.length > LIMITS.commandBytes) {
    throw fieldError('binaryData', `exceeds the limit of ${LIMITS.commandBytes} bytes`);
  }
  if (conn.congested) throw new KeywayError('RESOURCE_EXHAUSTED', 'the device is not reading its messages fast enough');

  const topic = session.topics.commandTopic(subfolder);
  // Checked per delivery: a policy that no longer lets the device receive it cuts it off now.
  // An attached device's own policy decides, as on a connection of its own.
  if (!session.policy.can('receive', topic)) return 'not-subscribed';
  if (qos === 0) {
    conn.send({ cmd: 'publish', topic, payload: request.binaryData, qos: 0, dup: false, retain: false });
    return 'delivered';
  }
  conn.publishAtLeastOnce(topic, request.binaryData, 'command');
  return 'delivered';
}
