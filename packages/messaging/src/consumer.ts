import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import type { JetStreamContext, MinimalLogger } from './connection';
import { errorText, isAlreadyThere, isNotFound, nanos } from './jetstream-errors';

export interface BatchItem<T> {
  value: T;
  msg: JsMsg;
}

export interface DurableConsumerOptions<T> {
  ctx: JetStreamContext;
  stream: string;
  durable: string;
  filterSubject: string;
  /** Validates the decoded JSON; throwing terminates the message. */
  parse: (raw: unknown) => T;
  /** Must be idempotent: any item may have been handled before. */
  handle: (items: ReadonlyArray<BatchItem<T>>) => Promise<void>;
  /** True for an error no retry can fix; such a batch is split to isolate the culprit. */
  isPermanent?: (err: unknown) => boolean;
  /**
   * True for a parse failure a later delivery may get past: an event of a schema version newer
   * than this reader knows, during a rolling deploy. Such a message is redelivered with the growing
   * delay up to `maxDeliver`, not terminated at once. Default: none.
   */
  parseRetryable?: (err: unknown) => boolean;
  logger: MinimalLogger;
  /** Most messages handed over at once, and how many the client pulls ahead (256). */
  maxBatch?: number;
  /** Batches handled at once (1: in order). */
  writers?: number;
  /** Deliveries before a message that keeps failing is terminated (10). */
  maxDeliver?: number;
  /** Delay before the first redelivery of a failed message (1000). */
  nakDelayMs?: number;
  /** Upper bound of the growing delay (60000). */
  maxNakDelayMs?: number;
  /** Growth of the delay per delivery (2). */
  backoffFactor?: number;
  /** How long the server waits for an ack before it redelivers (30000). */
  ackWaitMs?: number;
  /** Un-acked messages the server lets out to all replicas together. */
  maxAckPending?: number;
  /** Pause before the loop is set up again after it ended on an error. */
  restartDelayMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Backoff {
  nakDelayMs: number;
  maxNakDelayMs: number;
  backoffFactor: number;
}

/** The delay before redelivering a message whose `attempt`-th delivery (1 = first) failed. */
export function nakDelay(attempt: number, b: Backoff): number {
  const grown = b.nakDelayMs * b.backoffFactor ** Math.max(0, attempt - 1);
  return Math.round(Math.min(b.maxNakDelayMs, grown));
}

type Parsed<T> = { ok: true; value: T } | { ok: false };

/**
 * The durable JetStream consumer every service uses: a pull consumer shared by all replicas of a
 * service, that hands its handler every message that has arrived rather than one at a time, so a
 * service can apply a batch in one statement and ack it after. (One message per await capped a
 * consumer at one database round trip per event.)
 *
 * Batching is adaptive rather than timed: a writer takes whatever is buffered, and while it writes
 * the next batch collects. One event under light load is handled at once (no linger); under heavy
 * load batches grow up to `maxBatch`. The buffer is bounded: when it is full the reader waits, and
 * the client stops pulling once its own `max_messages` are unread.
 *
 * Delivery: at least once, explicit acks only after the handler resolved. Each message is
 * validated on receipt (`parse`); one that does not parse is terminated at once and logged with
 * the reason. A failed batch is nak'ed with a delay that doubles with each delivery of the message
 * (`nakDelayMs`, 2×, 4×… up to `maxNakDelayMs`), so an outage is not hammered at a fixed rate, and a
 * message that has failed `maxDeliver` times is terminated and logged. A failure the handler calls
 * permanent (bad data) is retried message by message, so one bad event costs its batch a retry,
 * not a redelivery.
 *
 * The delay is the client's `nak(delay)`, not the consumer's server-side `backoff` list: that list
 * also replaces `ack_wait` for each delivery, which would cut short a batch that is still being
 * written.
 */
export class DurableConsumer<T> {
  private readonly maxBatch: number;
  private readonly writers: number;
  private readonly maxDeliver: number;
  private readonly backoff: Backoff;
  private readonly isPermanent: (err: unknown) => boolean;
  private stopping = false;
  private consuming = false;
  private messages: ConsumerMessages | undefined;
  private loop: Promise<void> = Promise.resolve();

  private constructor(private readonly opts: DurableConsumerOptions<T>) {
    this.maxBatch = opts.maxBatch ?? 256;
    this.writers = opts.writers ?? 1;
    this.maxDeliver = opts.maxDeliver ?? 10;
    this.backoff = {
      nakDelayMs: opts.nakDelayMs ?? 1_000,
      maxNakDelayMs: opts.maxNakDelayMs ?? 60_000,
      backoffFactor: opts.backoffFactor ?? 2,
    };
    this.isPermanent = opts.isPermanent ?? (() => false);
  }

  /** Creates or updates the durable consumer (fails fast if NATS refuses it), then consumes in the background. */
  static async start<T>(opts: DurableConsumerOptions<T>): Promise<DurableConsumer<T>> {
    const consumer = new DurableConsumer(opts);
    await consumer.ensureConsumer();
    consumer.loop = consumer.supervise();
    return consumer;
  }

  /** True while a pull subscription is open; for readiness. */
  get isConsuming(): boolean {
    return this.consuming;
  }

  /** Stops pulling, lets batches in hand finish (written and acked), and resolves when the loop ended. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.messages?.close().catch(() => undefined);
    await this.loop;
  }

  private async ensureConsumer(): Promise<void> {
    const { jsm } = this.opts.ctx;
    const mutable = {
      filter_subject: this.opts.filterSubject,
      max_deliver: this.maxDeliver,
      ack_wait: nanos(this.opts.ackWaitMs ?? 30_000),
      max_ack_pending: this.opts.maxAckPending ?? 20_000,
    };
    try {
      await jsm.consumers.info(this.opts.stream, this.opts.durable);
      await jsm.consumers.update(this.opts.stream, this.opts.durable, mutable);
    } catch (err) {
      if (!isNotFound(err, 'consumer')) throw err;
      try {
        await jsm.consumers.add(this.opts.stream, {
          ...mutable,
          durable_name: this.opts.durable,
          ack_policy: AckPolicy.Explicit,
          deliver_policy: DeliverPolicy.All,
        });
      } catch (addErr) {
        // Another replica created it between our look-up and our add: it is the same consumer.
        if (!isAlreadyThere(addErr)) throw addErr;
      }
    }
  }

  /** Keeps a consume loop running until stop(): a loop that dies (consumer gone, stream recreated) is set up again. */
  private async supervise(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.consumeOnce();
      } catch (err) {
        if (this.stopping) break;
        this.opts.logger.error({ err, durable: this.opts.durable }, 'consumer loop failed; setting it up again');
      }
      // A closed connection does not come back; whoever closed it is shutting us down.
      if (this.stopping || this.opts.ctx.nc.isClosed()) break;
      await sleep(this.opts.restartDelayMs ?? 1_000);
      if (this.stopping) break;
      await this.ensureConsumer().catch((err: unknown) =>
        this.opts.logger.warn({ err, durable: this.opts.durable }, 'could not ensure the consumer; retrying'),
      );
    }
  }

  private async consumeOnce(): Promise<void> {
    const consumer = await this.opts.ctx.js.consumers.get(this.opts.stream, this.opts.durable);
    const messages = await consumer.consume({ max_messages: this.maxBatch });
    this.messages = messages;
    if (this.stopping) await messages.close();
    this.consuming = true;

    const buffer: Array<BatchItem<T>> = [];
    let ended = false;
    let idleWriters: Array<() => void> = [];
    let pumpWaiting: (() => void) | undefined;
    const wakeWriters = (): void => {
      const waiting = idleWriters;
      idleWriters = [];
      for (const wake of waiting) wake();
    };

    const pump = async (): Promise<void> => {
      try {
        for await (const msg of messages) {
          const parsed = this.parse(msg);
          if (!parsed.ok) continue;
          buffer.push({ value: parsed.value, msg });
          wakeWriters();
          while (buffer.length >= this.maxBatch) await new Promise<void>((r) => (pumpWaiting = r));
        }
      } finally {
        ended = true;
        wakeWriters();
      }
    };
    const writer = async (): Promise<void> => {
      for (;;) {
        if (buffer.length === 0) {
          if (ended) return;
          await new Promise<void>((r) => idleWriters.push(r));
          continue;
        }
        const batch = buffer.splice(0, this.maxBatch);
        const resume = pumpWaiting;
        pumpWaiting = undefined;
        resume?.();
        await this.process(batch);
      }
    };

    try {
      const results = await Promise.allSettled([pump(), ...Array.from({ length: this.writers }, () => writer())]);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      if (!this.stopping) throw new Error('the consumer stopped delivering');
    } finally {
      this.consuming = false;
    }
  }

  private parse(msg: JsMsg): Parsed<T> {
    try {
      return { ok: true, value: this.opts.parse(msg.json()) };
    } catch (err) {
      if (this.opts.parseRetryable?.(err) && msg.info.deliveryCount < this.maxDeliver) {
        this.settleFailure(msg, err);
        return { ok: false };
      }
      this.opts.logger.error({ err, reason: errorText(err), subject: msg.subject, seq: msg.seq }, 'invalid message terminated');
      // No reason argument: nats-server 2.9 does not parse `+TERM <reason>` and would leave the
      // message pending, to be redelivered after ack_wait. The reason is in the log line instead.
      msg.term();
      return { ok: false };
    }
  }

  private async process(batch: Array<BatchItem<T>>): Promise<void> {
    try {
      await this.opts.handle(batch);
      for (const item of batch) item.msg.ack();
      return;
    } catch (err) {
      if (batch.length > 1 && this.isPermanent(err)) {
        this.opts.logger.warn({ err, size: batch.length }, 'batch refused; writing its messages one by one');
        for (const item of batch) {
          try {
            await this.opts.handle([item]);
            item.msg.ack();
          } catch (itemErr) {
            this.settleFailure(item.msg, itemErr);
          }
        }
        return;
      }
      // One line per batch: a database outage would otherwise log every message in it.
      const delays = batch.map((item) => this.settleFailure(item.msg, err, { quiet: true }));
      const retried = delays.filter((d): d is number => d !== undefined);
      if (retried.length > 0) {
        this.opts.logger.warn({ err, size: batch.length, retried: retried.length, nakDelayMs: Math.max(...retried) }, 'batch failed; retrying later');
      }
    }
  }

  /** Terminates the message (returns undefined) or nak's it, returning the delay asked for. */
  private settleFailure(msg: JsMsg, err: unknown, opts: { quiet?: boolean } = {}): number | undefined {
    const attempt = msg.info.deliveryCount;
    if (this.isPermanent(err) || attempt >= this.maxDeliver) {
      this.opts.logger.error(
        { err, reason: errorText(err), subject: msg.subject, seq: msg.seq, attempt },
        this.isPermanent(err) ? 'message refused by the handler, terminated' : 'message failed on its last delivery, terminated',
      );
      msg.term(); // no reason argument: see parse()
      return undefined;
    }
    const delay = nakDelay(attempt, this.backoff);
    if (!opts.quiet) this.opts.logger.warn({ err, subject: msg.subject, seq: msg.seq, attempt, nakDelayMs: delay }, 'message failed; retrying later');
    msg.nak(delay);
    return delay;
  }
}
