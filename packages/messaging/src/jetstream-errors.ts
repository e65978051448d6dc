import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';

/** The JetStream API answered that the stream (or, with `consumer`, the consumer) does not exist. */
export function isNotFound(err: unknown, what: 'stream' | 'consumer' = 'stream'): boolean {
  if (err instanceof JetStreamApiError) {
    // A consumer look-up on a missing stream answers "stream not found": that is "not found" too.
    return err.code === JetStreamApiCodes.StreamNotFound || (what === 'consumer' && err.code === JetStreamApiCodes.ConsumerNotFound);
  }
  return /not found/i.test(err instanceof Error ? err.message : String(err));
}

/** Another replica created the same stream or consumer between our look-up and our add. */
export const isAlreadyThere = (err: unknown): boolean => /already in use|exists/i.test(String(err));

export const nanos = (ms: number): number => ms * 1_000_000;

export const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));
