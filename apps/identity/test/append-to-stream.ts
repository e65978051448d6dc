import { EventStore, stamp, type StoredEvent } from '../src/event-store/event-store';

/**
 * Appends events to a stream inside the caller's transaction, through the event store's own path,
 * without a command: for the relay's tests, which need many writers and streams at once.
 */
export async function appendToStream(
  tx: EventStore | ConstructorParameters<typeof EventStore>[0],
  streamId: string,
  expected: number,
  events: Parameters<typeof stamp>[2],
  meta: Parameters<typeof stamp>[3],
): Promise<StoredEvent[]> {
  const stored = stamp(streamId, expected, events, meta);
  await (tx instanceof EventStore ? tx : new EventStore(tx)).append(streamId, expected, stored);
  return stored;
}
