import { DiscardPolicy, JetStreamApiError, RetentionPolicy, StorageType, type JetStreamManager, type StreamInfo } from '@nats-io/jetstream';
import type { MinimalLogger } from './connection';
import { errorText, isAlreadyThere, isNotFound, nanos } from './jetstream-errors';

export interface StreamSpec {
  name: string;
  subjects: string[];
  /** How long a message id is remembered for de-duplication. */
  duplicateWindowMs?: number;
  /** How long a message is kept (0 or absent: for good). */
  maxAgeMs?: number;
  /**
   * How many copies (3). A server that is not clustered, or a cluster with fewer peers, gets one:
   * the same code runs on a laptop and on a 3-node cluster.
   */
  replicas?: number;
  /** The largest message the stream takes (STREAM_MAX_MSG_BYTES). */
  maxMsgBytes?: number;
  /** At most this many bytes (absent: no limit but the server's store). Full, it refuses new messages. */
  maxBytes?: number;
  /**
   * At most this many messages per subject (absent: no limit): the subject's oldest is dropped for
   * its newest, whatever the stream's `discard` (which governs only the stream-wide limits), so
   * each subject's latest messages are kept for good.
   */
  maxMsgsPerSubject?: number;
}

/**
 * Events are bounded by the contracts (a record at most ITEM_MAX_BYTES, 20 KiB; an event with a
 * before and after, about 41 KiB): 256 KiB leaves room, well under NATS's 1 MiB max_payload. A
 * larger message is refused at publish, and the outbox keeps it (the backlog shows it).
 */
export const STREAM_MAX_MSG_BYTES = 256 * 1024;
/** The duplicate window when the spec names none. */
const DEFAULT_DUPLICATE_WINDOW_MS = 2 * 60_000;
const DEFAULT_REPLICAS = 3;

/**
 * The server cannot place that many replicas: not clustered (10074), or fewer peers than asked
 * (10023, insufficient resources).
 */
function isReplicaRefusal(err: unknown): boolean {
  if (err instanceof JetStreamApiError && (err.code === 10074 || err.code === 10023)) return true;
  return /replicas > 1 not supported|insufficient resources/i.test(errorText(err));
}

/**
 * For the stream's one owner: creates the stream, or brings an existing one to this spec. Every
 * other service uses `awaitStream`. The limits are explicit (docs/operations/durability.md):
 * limits retention, file storage, `discard: new` (a stream with a byte limit refuses rather than
 * forgets the oldest events: the outbox keeps what was refused), the message-size cap, and 3
 * replicas where the cluster has them (1 on a single server).
 */
export async function ensureStream(jsm: JetStreamManager, spec: StreamSpec): Promise<StreamInfo> {
  const desired = Math.max(1, spec.replicas ?? DEFAULT_REPLICAS);
  const config = (replicas: number) => ({
    name: spec.name,
    subjects: spec.subjects,
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.New,
    duplicate_window: nanos(spec.duplicateWindowMs ?? DEFAULT_DUPLICATE_WINDOW_MS),
    max_age: nanos(spec.maxAgeMs ?? 0),
    max_msg_size: spec.maxMsgBytes ?? STREAM_MAX_MSG_BYTES,
    max_bytes: spec.maxBytes ?? -1,
    max_msgs_per_subject: spec.maxMsgsPerSubject ?? -1,
    num_replicas: replicas,
  });
  // Asks for `desired` replicas, and takes one when the server cannot place them.
  const withReplicas = async (apply: (replicas: number) => Promise<StreamInfo>): Promise<StreamInfo> => {
    try {
      return await apply(desired);
    } catch (err) {
      if (desired === 1 || !isReplicaRefusal(err)) throw err;
      return apply(1);
    }
  };
  let info: StreamInfo;
  try {
    info = await jsm.streams.info(spec.name);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    try {
      return await withReplicas((r) => jsm.streams.add(config(r)));
    } catch (addErr) {
      if (!isAlreadyThere(addErr)) throw addErr;
      info = await jsm.streams.info(spec.name);
    }
  }
  const want = config(info.config.num_replicas);
  const c = info.config;
  const same =
    c.subjects?.join() === spec.subjects.join() &&
    c.duplicate_window === want.duplicate_window &&
    c.max_age === want.max_age &&
    c.max_msg_size === want.max_msg_size &&
    c.max_bytes === want.max_bytes &&
    // A stream made without the limit reports -1 (0 on some servers): none.
    ((c.max_msgs_per_subject ?? 0) > 0 ? c.max_msgs_per_subject : -1) === want.max_msgs_per_subject &&
    c.discard === want.discard;
  // Fewer replicas than asked on a cluster (a single server grown into one): try for more; a
  // cluster that cannot place them keeps what it has. (A server that is not clustered reports no
  // `cluster`, and nats-server 2.9 would accept the update there without making any replica.)
  if (c.num_replicas < desired && info.cluster?.name) {
    try {
      return await jsm.streams.update(spec.name, config(desired));
    } catch (err) {
      if (!isReplicaRefusal(err)) throw err;
    }
  }
  return same ? info : jsm.streams.update(spec.name, want);
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
