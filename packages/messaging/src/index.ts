export type { JetStreamClient, JetStreamManager, JsMsg, PubAck } from '@nats-io/jetstream';
export type { NatsConnection } from '@nats-io/transport-node';
export { connectNats, jetStreamContext, publishEvent, type JetStreamContext, type MinimalLogger } from './connection';
export { DurableConsumer, type BatchItem, type DurableConsumerOptions } from './consumer';
export { awaitStream, ensureStream, StreamMissingError, type AwaitStreamOptions, type StreamSpec } from './streams';
