/** A gateway's errors topic (`/devices/{gateway}/errors`) as a test reads it: one error after another. */
import type { MqttClient } from 'mqtt';

export interface GatewayErrorJson {
  readonly error_type: string;
  readonly description: string;
  readonly device_id: string;
  readonly mqtt_message_info?: { readonly message_type: string; readonly topic: string; readonly packet_id?: number };
}

export interface ErrorQueue {
  /** The next error, in the order they arrived; waited for (up to `timeoutMs`) if none is queued. */
  next(timeoutMs?: number): Promise<GatewayErrorJson>;
  /** Errors received and not yet taken. */
  readonly pending: number;
}

/** Collects what arrives on the gateway's errors topic; the client subscribes to it itself. */
export function errorQueue(client: MqttClient, gatewayId: string): ErrorQueue {
  const queue: GatewayErrorJson[] = [];
  const waiting: Array<(e: GatewayErrorJson) => void> = [];
  client.on('message', (topic, payload) => {
    if (topic !== `/devices/${gatewayId}/errors`) return;
    const error = JSON.parse(payload.toString()) as GatewayErrorJson;
    const waiter = waiting.shift();
    if (waiter) waiter(error);
    else queue.push(error);
  });
  return {
    next: (timeoutMs = 5000) =>
      new Promise((resolve, reject) => {
        const queued = queue.shift();
        if (queued) return resolve(queued);
        const waiter = (e: GatewayErrorJson): void => {
          clearTimeout(timer);
          resolve(e);
        };
        const timer = setTimeout(() => {
          waiting.splice(waiting.indexOf(waiter), 1);
          reject(new Error(`no error on /devices/${gatewayId}/errors within ${timeoutMs} ms`));
        }, timeoutMs);
        waiting.push(waiter);
      }),
    get pending() {
      return queue.length;
    },
  };
}
