export type { JetStreamClient } from '@nats-io/jetstream';
export { jetStreamContext, publishEvent, type JetStreamContext, type MinimalLogger } from './connection';
export { DEAD_LETTER_HEADERS, DurableConsumer, type BatchItem } from './consumer';
export { awaitStream, ensureStream } from './streams';
