import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type PubAck } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';

export interface MinimalLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface JetStreamContext {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

export async function jetStreamContext(nc: NatsConnection): Promise<JetStreamContext> {
  return { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
}

/**
 * Publishes one event with its id as the JetStream message id, so a republish after a crash is
 * de-duplicated by the server inside the stream's duplicate window.
 */
export async function publishEvent(
  js: JetStreamClient,
  subject: string,
  event: { id: string },
  opts: { timeoutMs?: number } = {},
): Promise<PubAck> {
  return js.publish(subject, JSON.stringify(event), { msgID: event.id, timeout: opts.timeoutMs ?? 5_000 });
}
