/**
 * The gateway side of the device topic namespace (reference §1.10): `/devices/{id}/attach` and
 * `/devices/{id}/detach` are control messages naming the device to attach or detach, and a
 * gateway speaks for a device it attached on that device's own topics, `/devices/{id}/…`.
 * Pure string work; whether the device is attached is the caller's question.
 */

export type GatewayPublish =
  | { readonly kind: 'attach' | 'detach'; readonly deviceId: string }
  /** A topic of another device: the gateway's, if it attached that device. */
  | { readonly kind: 'device'; readonly deviceId: string };

const PREFIX = '/devices/';

/** The id of a `/devices/{id}/…` topic or filter and what follows it; undefined for anything else. */
function split(topic: string): { readonly deviceId: string; readonly rest: string } | undefined {
  if (!topic.startsWith(PREFIX)) return undefined;
  const slash = topic.indexOf('/', PREFIX.length);
  if (slash <= PREFIX.length) return undefined;
  return { deviceId: topic.slice(PREFIX.length, slash), rest: topic.slice(slash + 1) };
}

/**
 * What a PUBLISH of the device `ownId` on `topic` is to the gateway machinery: a control message
 * (from any device: only a gateway may send one, the caller decides), or, for a gateway only,
 * another device's topic. Undefined: the device's own topics, or none of the gateway's business.
 */
export function classifyGatewayPublish(ownId: string, isGateway: boolean, topic: string): GatewayPublish | undefined {
  const parts = split(topic);
  if (parts === undefined) return undefined;
  if (parts.rest === 'attach' || parts.rest === 'detach') return { kind: parts.rest, deviceId: parts.deviceId };
  if (isGateway && parts.deviceId !== ownId) return { kind: 'device', deviceId: parts.deviceId };
  return undefined;
}

/**
 * The device a gateway's subscription filter is about when it names another device
 * (`/devices/{id}/config`, `/devices/{id}/commands/#`); undefined for the gateway's own filters
 * and everything outside `/devices/`.
 */
export function attachedFilterDevice(ownId: string, filter: string): string | undefined {
  const parts = split(filter);
  return parts !== undefined && parts.deviceId !== ownId ? parts.deviceId : undefined;
}
