/**
 * Validation of registry fields (reference §3.2–3.3). Each check names the request field at fault.
 */
import { fieldError } from '../domain/errors.js';
import {
  HTTP_STATES,
  LIMITS,
  LOG_LEVELS,
  MQTT_STATES,
  type EventNotificationConfig,
  type HttpState,
  type LogLevel,
  type MqttState,
  type NotificationConfig,
} from '../domain/resources.js';

/** Subfolders follow the resource-id alphabet (§3.2), without the 3-character minimum. */
const SUBFOLDER_MATCHES = /^[a-zA-Z][-a-zA-Z0-9._+~%]*$/;
/** Topic names are free text for now; this only bounds what we store. */
const TOPIC_NAME_MAX_CHARS = 1024;

export const REGISTRY_DEFAULTS = {
  mqttEnabledState: 'MQTT_ENABLED',
  httpEnabledState: 'HTTP_ENABLED',
  logLevel: 'LOG_LEVEL_UNSPECIFIED',
} as const satisfies { mqttEnabledState: MqttState; httpEnabledState: HttpState; logLevel: LogLevel };

export function checkEnum<T extends string>(values: readonly T[], value: unknown, field: string): T {
  if (typeof value !== 'string' || !(values as readonly string[]).includes(value))
    throw fieldError(field, `must be one of ${values.join(', ')}`);
  return value as T;
}

function checkTopicName(value: unknown, field: string): string {
  if (typeof value !== 'string') throw fieldError(field, 'must be a string');
  if (value.length > TOPIC_NAME_MAX_CHARS) throw fieldError(field, `must be at most ${TOPIC_NAME_MAX_CHARS} characters`);
  return value;
}

export function checkEventNotificationConfigs(
  configs: unknown,
  field = 'deviceRegistry.eventNotificationConfigs',
): EventNotificationConfig[] {
  if (!Array.isArray(configs)) throw fieldError(field, 'must be a list');
  if (configs.length > LIMITS.eventNotificationConfigs)
    throw fieldError(field, `at most ${LIMITS.eventNotificationConfigs} event notification configs are allowed`);
  return configs.map((config: unknown, i) => {
    const at = `${field}[${i}]`;
    if (typeof config !== 'object' || config === null) throw fieldError(at, 'must be an object');
    const { pubsubTopicName, subfolderMatches } = config as Record<string, unknown>;
    const topic = checkTopicName(pubsubTopicName, `${at}.pubsubTopicName`);
    if (subfolderMatches === undefined || subfolderMatches === '') return { pubsubTopicName: topic };
    const sub = `${at}.subfolderMatches`;
    if (typeof subfolderMatches !== 'string') throw fieldError(sub, 'must be a string');
    if (Buffer.byteLength(subfolderMatches, 'utf8') > LIMITS.subfolderBytes)
      throw fieldError(sub, `must be at most ${LIMITS.subfolderBytes} bytes`);
    if (!SUBFOLDER_MATCHES.test(subfolderMatches))
      throw fieldError(sub, `'${subfolderMatches}' must match [a-zA-Z][-a-zA-Z0-9._+~%]*`);
    return { pubsubTopicName: topic, subfolderMatches };
  });
}

/** An absent config, or one with an empty topic (proto3's default), means "no state notifications". */
export function checkStateNotificationConfig(
  config: unknown,
  field = 'deviceRegistry.stateNotificationConfig',
): NotificationConfig | undefined {
  if (config === undefined || config === null) return undefined;
  if (typeof config !== 'object') throw fieldError(field, 'must be an object');
  const topic = checkTopicName((config as Record<string, unknown>).pubsubTopicName ?? '', `${field}.pubsubTopicName`);
  return topic === '' ? undefined : { pubsubTopicName: topic };
}

export const checkMqttState = (v: unknown): MqttState =>
  checkEnum(MQTT_STATES, v, 'deviceRegistry.mqttConfig.mqttEnabledState');
export const checkHttpState = (v: unknown): HttpState =>
  checkEnum(HTTP_STATES, v, 'deviceRegistry.httpConfig.httpEnabledState');
export const checkRegistryLogLevel = (v: unknown): LogLevel => checkEnum(LOG_LEVELS, v, 'deviceRegistry.logLevel');
