import { EventEmitter } from 'node:events';
import type { Bus, CertificatesRevoked, CommandOutcome, CommandRequest, ConfigPushed, DeviceRevoked, GatewayBindingChanged, PoliciesChanged, RegistryAccessChanged, ServiceIdentityChanged } from './bus.js';

/** The single-node bus: listeners are called synchronously in the publishing process. */
export class LocalBus implements Bus {
  readonly #events = new EventEmitter().setMaxListeners(0);
  #commandHandler: ((request: CommandRequest) => Promise<CommandOutcome>) | undefined;

  publishConfig(event: ConfigPushed): void {
    this.#events.emit('config', event);
  }

  onConfig(listener: (event: ConfigPushed) => void): () => void {
    this.#events.on('config', listener);
    return () => this.#events.off('config', listener);
  }

  publishRevoked(event: DeviceRevoked): void {
    this.#events.emit('revoked', event);
  }

  onRevoked(listener: (event: DeviceRevoked) => void): () => void {
    this.#events.on('revoked', listener);
    return () => this.#events.off('revoked', listener);
  }

  publishCertificatesRevoked(event: CertificatesRevoked): void {
    this.#events.emit('certificates-revoked', event);
  }

  onCertificatesRevoked(listener: (event: CertificatesRevoked) => void): () => void {
    this.#events.on('certificates-revoked', listener);
    return () => this.#events.off('certificates-revoked', listener);
  }

  publishPoliciesChanged(event: PoliciesChanged): void {
    this.#events.emit('policies-changed', event);
  }

  onPoliciesChanged(listener: (event: PoliciesChanged) => void): () => void {
    this.#events.on('policies-changed', listener);
    return () => this.#events.off('policies-changed', listener);
  }

  publishServiceIdentityChanged(event: ServiceIdentityChanged): void {
    this.#events.emit('service-identity-changed', event);
  }

  onServiceIdentityChanged(listener: (event: ServiceIdentityChanged) => void): () => void {
    this.#events.on('service-identity-changed', listener);
    return () => this.#events.off('service-identity-changed', listener);
  }

  publishGatewayBindingChanged(event: GatewayBindingChanged): void {
    this.#events.emit('gateway-binding-changed', event);
  }

  onGatewayBindingChanged(listener: (event: GatewayBindingChanged) => void): () => void {
    this.#events.on('gateway-binding-changed', listener);
    return () => this.#events.off('gateway-binding-changed', listener);
  }

  publishRegistryAccessChanged(event: RegistryAccessChanged): void {
    this.#events.emit('registry-access-changed', event);
  }

  onRegistryAccessChanged(listener: (event: RegistryAccessChanged) => void): () => void {
    this.#events.on('registry-access-changed', listener);
    return () => this.#events.off('registry-access-changed', listener);
  }

  async sendCommand(request: CommandRequest): Promise<CommandOutcome> {
    return this.#commandHandler ? this.#commandHandler(request) : 'not-connected';
  }

  handleCommands(handler: (request: CommandRequest) => Promise<CommandOutcome>): () => void {
    this.#commandHandler = handler;
    return () => {
      if (this.#commandHandler === handler) this.#commandHandler = undefined;
    };
  }

  async close(): Promise<void> {
    this.#events.removeAllListeners();
    this.#commandHandler = undefined;
  }
}
