export type { JetStreamClient } from '@nats-io/jetstream';
export { jetStreamContext, publishEvent, type JetStreamContext, type MinimalLogger } from './connection';
export { DurableConsumer, type BatchItem } from './consumer';
export { awaitStream, ensureStream } from './streams';
