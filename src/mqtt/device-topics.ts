/**
 * The device-facing topic namespace of Cloud IoT Core (reference §1.6): a device publishes to
 * `/devices/{id}/events[/{subfolder…}]` and `/devices/{id}/state`, and subscribes to
 * `/devices/{id}/config`, `/devices/{id}/commands/#` and (gateway errors, §1.10)
 * `/devices/{id}/errors` — its own id only, nothing else.
 * Pure string work: the topic strings are built once per connection and compared exactly.
 */
import { LIMITS } from '../domain/resources.js';

export type DevicePublish =
  /** `suffix` is '' or `/{subfolder…}` exactly as the device wrote it. */
  | { readonly kind: 'events'; readonly suffix: string }
  | { readonly kind: 'state' }
  /** Not one of the device's own publish topics. */
  | { readonly kind: 'forbidden' }
  /** One of its topics, but malformed. */
  | { readonly kind: 'invalid'; readonly reason: string };

export type DeviceSubscription = 'config' | 'commands' | 'errors';

const STATE: DevicePublish = { kind: 'state' };
const FORBIDDEN: DevicePublish = { kind: 'forbidden' };
const EVENTS_WITHOUT_SUBFOLDER: DevicePublish = { kind: 'events', suffix: '' };

/** Wildcards may not appear in a topic name (MQTT 3.1.1 §4.7.1), nor NUL anywhere (§1.5.3). */
const WILDCARD = /[+#]/;

/**
 * A topic or filter outside Cloud IoT Core's `/devices/` space and the reserved `$` topics (`$share`
 * included): a device policy may grant it (device-spaces).
 */
export const isCustomTopic = (topic: string): boolean => !topic.startsWith('/devices/') && !topic.startsWith('$');

/** Why a subfolder is unusable, or undefined when it is fine. */
export function subfolderProblem(subfolder: string): string | undefined {
  if (subfolder.length === 0) return 'the subfolder is empty';
  if (WILDCARD.test(subfolder) || subfolder.includes('\u0000')) return "the subfolder contains '+', '#' or NUL";
  return undefined;
}

/** Commands carry a stricter subfolder rule (reference §1.8): at most 256 bytes. */
export function commandSubfolderProblem(subfolder: string): string | undefined {
  const problem = subfolderProblem(subfolder);
  if (problem) return problem;
  if (Buffer.byteLength(subfolder) > LIMITS.subfolderBytes) return `the subfolder exceeds ${LIMITS.subfolderBytes} bytes`;
  return undefined;
}

/** The topics of one device, keyed by its id (never its numeric id). */
export class DeviceTopics {
  readonly events: string;
  readonly state: string;
  readonly config: string;
  readonly commands: string;
  readonly commandsFilter: string;
  /** Where a gateway is told of errors about the devices it attaches (gateway-errors). */
  readonly errors: string;
  readonly #eventsPrefix: string;

  constructor(readonly deviceId: string) {
    const base = `/devices/${deviceId}`;
    this.events = `${base}/events`;
    this.state = `${base}/state`;
    this.config = `${base}/config`;
    this.commands = `${base}/commands`;
    this.commandsFilter = `${base}/commands/#`;
    this.errors = `${base}/errors`;
    this.#eventsPrefix = `${this.events}/`;
  }

  classifyPublish(topic: string): DevicePublish {
    if (topic === this.events) return EVENTS_WITHOUT_SUBFOLDER;
    if (topic === this.state) return STATE;
    if (topic.startsWith(this.#eventsPrefix)) {
      const problem = subfolderProblem(topic.slice(this.#eventsPrefix.length));
      if (problem) return { kind: 'invalid', reason: problem };
      return { kind: 'events', suffix: topic.slice(this.events.length) };
    }
    return FORBIDDEN;
  }

  classifySubscription(filter: string): DeviceSubscription | undefined {
    if (filter === this.config) return 'config';
    if (filter === this.commandsFilter) return 'commands';
    if (filter === this.errors) return 'errors';
    return undefined;
  }

  /** The topic a command is published on; the subfolder must have passed commandSubfolderProblem. */
  commandTopic(subfolder: string | undefined): string {
    return subfolder === undefined || subfolder === '' ? this.commands : `${this.commands}/${subfolder}`;
  }
}
