import type { JetStreamManager, StreamInfo } from '@nats-io/jetstream';
import type { MinimalLogger } from './connection';
import { errorText, isAlreadyThere, isNotFound, nanos } from './jetstream-errors';

export interface StreamSpec {
  name: string;
  subjects: string[];
  /** How long a message id is remembered for de-duplication. */
  duplicateWindowMs?: number;
  /** How long a message is kept (0 or absent: for good). */
  maxAgeMs?: number;
}

/**
 * For the stream's one owner: creates the stream, or brings an existing one's subjects and window
 * to this spec. Every other service uses `awaitStream`.
 */
export async function ensureStream(jsm: JetStreamManager, spec: StreamSpec): Promise<void> {
  const config = {
    name: spec.name,
    subjects: spec.subjects,
    duplicate_window: nanos(spec.duplicateWindowMs ?? 2 * 60_000),
    max_age: nanos(spec.maxAgeMs ?? 0),
  };
  try {
    const info = await jsm.streams.info(spec.name);
    const same =
      info.config.subjects?.join() === spec.subjects.join() &&
      info.config.duplicate_window === config.duplicate_window &&
      info.config.max_age === config.max_age;
    if (!same) await jsm.streams.update(spec.name, config);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    try {
      await jsm.streams.add(config);
    } catch (addErr) {
      if (!isAlreadyThere(addErr)) throw addErr;
    }
  }
}

export interface AwaitStreamOptions {
  name: string;
  /** The service that creates and updates the stream, named in the error if it never appears. */
  owner: string;
  /** How long to wait for the owner (60000). */
  timeoutMs?: number;
  /** How often to look (500). */
  pollMs?: number;
  logger?: MinimalLogger;
}

/** The stream did not appear within the wait: its owner has not created it. */
export class StreamMissingError extends Error {
  constructor(
    readonly stream: string,
    readonly owner: string,
    waitedMs: number,
    lastError: unknown,
  ) {
    super(
      `JetStream stream ${stream} does not exist after waiting ${waitedMs} ms. It is created and configured by ${owner} ` +
        `only: start ${owner}, and check that both services name the same stream (last answer: ${errorText(lastError)})`,
    );
    this.name = 'StreamMissingError';
  }
}

/**
 * For every service that uses a stream it does not own: waits, a bounded time, until the owner
 * has created it, and never creates or changes it. Each stream has exactly one owner (the one
 * that calls `ensureStream`), so the owner's settings (e.g. identity's 10-minute duplicate window
 * on KEYWAY) are not overwritten by whoever boots last. Services may start in any order: the
 * others wait instead of failing fast and restarting in a loop.
 */
export async function awaitStream(jsm: JetStreamManager, opts: AwaitStreamOptions): Promise<StreamInfo> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (let attempt = 1; ; attempt++) {
    try {
      return await jsm.streams.info(opts.name);
    } catch (err) {
      // Not found, or NATS not answering yet: both may pass while the owner boots.
      lastError = err;
    }
    if (Date.now() >= deadline) throw new StreamMissingError(opts.name, opts.owner, timeoutMs, lastError);
    if (attempt === 1) {
      opts.logger?.warn({ stream: opts.name, owner: opts.owner, timeoutMs, reason: errorText(lastError) }, `waiting for ${opts.owner} to create the stream`);
    }
    await new Promise((r) => setTimeout(r, Math.min(opts.pollMs ?? 500, Math.max(0, deadline - Date.now()))));
  }
}
