/**
 * Commands (reference §1.8): only a device connected here and subscribed to `commands/#` gets
 * one, published on `/devices/{id}/commands[/{subfolder}]` at its subscription's QoS. Nothing is
 * queued for later.
 */
import type { CommandOutcome, CommandRequest } from '../bus/bus.js';
import { fieldError, KeywayError } from '../domain/errors.js';
import { LIMITS } from '../domain/resources.js';
import type { BrokerContext } from './context.js';
import { commandSubfolderProblem } from './device-topics.js';

export function deliverCommand(ctx: BrokerContext, request: CommandRequest): CommandOutcome {
  const conn = ctx.devices.get(request.device);
  const state = conn?.state;
  if (!conn || !conn.isOpen || state?.phase !== 'device') return 'not-connected';
  const session = state.session;
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
  if (!session.policy.can('receive', topic)) return 'not-subscribed';
  if (qos === 0) {
    conn.send({ cmd: 'publish', topic, payload: request.binaryData, qos: 0, dup: false, retain: false });
    return 'delivered';
  }
  conn.publishAtLeastOnce(topic, request.binaryData, 'command');
  return 'delivered';
}
