import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { headers } from '@nats-io/transport-node';
import { Counter, Gauge, register } from 'prom-client';
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
  /** Validates the decoded JSON; throwing dead-letters the message (see `parseRetryable`). */
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
  /**
   * Where a message that can never be processed is published before it is terminated (the
   * contracts' `deadLetterSubject(stream, durable)`, captured by `KEYWAY_DLQ`). Unset: it is only
   * terminated and logged.
   */
  deadLetterSubject?: string;
  logger: MinimalLogger;
  /** Most messages handed over at once, and how many the client pulls ahead (256). */
  maxBatch?: number;
  /** Batches handled at once (1: in order). */
  writers?: number;
  /**
   * How long a writer lets a short batch fill before taking it (0). For a handler whose cost is
   * mostly per batch (a transaction of several round trips): without it, a writer that keeps up
   * takes the few messages that came in during its last batch, and batches stay small.
   */
  lingerMs?: number;
  /** Deliveries before a message that keeps failing is dead-lettered (10). */
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
const nextTurnOfTheLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * Messages the reader parses before it lets the event loop handle I/O. The client's queue hands
 * queued messages over in promise jobs, which run before any I/O callback: after a full buffer
 * was taken, a backlog's next 3,000 messages were parsed in one go, and for that 100 ms the
 * writers' database replies (a batch's BEGIN, its insert's result) waited in the socket.
 */
export const PARSE_SLICE = 128;
/**
 * How long a writer (after its linger, if any) waits for a batch to fill while the client's queue
 * still holds messages (a backlog being parsed PARSE_SLICE at a time): the rest of a full batch is
 * already here. Bounded, so that a reader slowed by a busy process does not hold a batch back.
 */
export const FILL_WAIT_MS = 200;

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
 * the client stops pulling once its own `max_messages` are unread. A backlog is parsed PARSE_SLICE
 * messages at a time, the event loop turning between slices (the writers' replies come in
 * meanwhile), and a writer waits for a batch to fill while the rest of it is already queued.
 *
 * Delivery: at least once, explicit acks only after the handler resolved. Each message is
 * validated on receipt (`parse`). A failed batch is nak'ed with a delay that doubles with each
 * delivery of the message (`nakDelayMs`, 2×, 4×… up to `maxNakDelayMs`), so an outage is not
 * hammered at a fixed rate. A failure the handler calls permanent (bad data) is retried message by
 * message, so one bad event costs its batch a retry, not a redelivery.
 *
 * Poison messages: one that can never be processed — it does not parse (bad JSON, unknown type,
 * wrong shape), its parse failure is `parseRetryable` (a newer schema version) and stays so after
 * `maxDeliver` deliveries, the handler refuses it as permanent, or it failed `maxDeliver` times —
 * is published, with its original data, to `deadLetterSubject` with headers naming the reason
 * (`DEAD_LETTER_HEADERS`), then terminated; the consumer carries on with the messages behind it.
 * Should that publish fail, the message is nak'ed with the same growing delay, never acked or
 * terminated, and tried again on its redelivery. So the server's own `max_deliver` is unlimited:
 * the bound is counted here, where a message is never dropped without its dead letter.
 *
 * The delay is the client's `nak(delay)`, not the consumer's server-side `backoff` list: that list
 * also replaces `ack_wait` for each delivery, which would cut short a batch that is still being
 * written.
 */
/**
 * Consumer metrics (DESIGN "Operations"), in prom-client's default registry with the service's:
 * lag as the server reports it (num_pending + num_ack_pending, asked at scrape time), and the
 * redeliveries and dead letters this replica saw. Labels: stream and durable names, both bounded.
 */
type ConsumerLabels = 'stream' | 'durable';
const once = <M>(name: string, make: () => M): M => (register.getSingleMetric(name) as M | undefined) ?? make();
const redeliveries = () =>
  once('keyway_consumer_redeliveries_total', () => new Counter<ConsumerLabels>({ name: 'keyway_consumer_redeliveries_total', help: 'Messages delivered again (not their first delivery), by stream and durable', labelNames: ['stream', 'durable'] }));
const deadLetters = () =>
  once('keyway_consumer_dead_letters_total', () => new Counter<ConsumerLabels>({ name: 'keyway_consumer_dead_letters_total', help: 'Messages that could never be processed, dead-lettered and terminated, by stream and durable', labelNames: ['stream', 'durable'] }));

/** The consumers of this process, asked for their lag when Prometheus scrapes. */
const running = new Set<DurableConsumer<unknown>>();
const registerPendingGauge = () =>
  once('keyway_consumer_pending', () =>
    new Gauge<ConsumerLabels>({
      name: 'keyway_consumer_pending',
      help: 'Messages the durable consumer has not yet had acked (num_pending + num_ack_pending), by stream and durable',
      labelNames: ['stream', 'durable'],
      async collect() {
        await Promise.all([...running].map(async (c) => {
          const pending = await c.lag();
          if (pending !== undefined) this.labels(c.labels).set(pending);
        }));
      },
    }),
  );

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
    registerPendingGauge();
    running.add(consumer as DurableConsumer<unknown>);
    return consumer;
  }

  /** The metric labels of this consumer. */
  get labels(): Record<ConsumerLabels, string> {
    return { stream: this.opts.stream, durable: this.opts.durable };
  }

  /** num_pending + num_ack_pending from the server, or undefined if it does not answer within a second. */
  async lag(): Promise<number | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), 1_000);
      timer.unref();
    });
    const info = this.opts.ctx.jsm.consumers.info(this.opts.stream, this.opts.durable).then(
      (i) => i.num_pending + i.num_ack_pending,
      () => undefined,
    );
    const r = await Promise.race([info, timeout]);
    clearTimeout(timer);
    return r;
  }

  /** True while a pull subscription is open; for readiness. */
  get isConsuming(): boolean {
    return this.consuming;
  }

  /** Stops pulling, lets batches in hand finish (written and acked), and resolves when the loop ended. */
  async stop(): Promise<void> {
    this.stopping = true;
    running.delete(this as DurableConsumer<unknown>);
    await this.messages?.close().catch(() => undefined);
    await this.loop;
  }

  private async ensureConsumer(): Promise<void> {
    const { jsm } = this.opts.ctx;
    const mutable = {
      filter_subject: this.opts.filterSubject,
      // Unlimited on the server: the bound is `maxDeliver`, counted here (see the class comment).
      max_deliver: -1,
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
    const lingerMs = this.opts.lingerMs ?? 0;
    let ended = false;
    let idleWriters: Array<() => void> = [];
    let filling: Array<() => void> = [];
    let pumpWaiting: (() => void) | undefined;
    const wake = (waiting: Array<() => void>): void => {
      for (const w of waiting) w();
    };
    const wakeWriters = (): void => {
      const waiting = idleWriters;
      idleWriters = [];
      wake(waiting);
    };
    /** Writers waiting for a batch to fill: woken when it is full, a slice was parsed, the queue ran dry or the reader ended. */
    const wakeFilling = (): void => {
      const waiting = filling;
      filling = [];
      wake(waiting);
    };
    // Messages the client received that the reader has not taken yet (counted apart from the
    // client's own notifications, which share its queue: its getPending counts some of those).
    const queued = (): number => messages.getReceived() - messages.getProcessed();

    const pump = async (): Promise<void> => {
      let sliced = 0;
      try {
        for await (const msg of messages) {
          const parsed = await this.parse(msg);
          if (parsed.ok) {
            buffer.push({ value: parsed.value, msg });
            wakeWriters();
          }
          if (++sliced >= PARSE_SLICE) {
            sliced = 0;
            wakeFilling();
            await nextTurnOfTheLoop();
          }
          if (buffer.length >= this.maxBatch || queued() === 0) wakeFilling();
          while (buffer.length >= this.maxBatch) await new Promise<void>((r) => (pumpWaiting = r));
        }
      } finally {
        ended = true;
        wakeWriters();
        wakeFilling();
      }
    };
    const writer = async (): Promise<void> => {
      for (;;) {
        if (buffer.length === 0) {
          if (ended) return;
          await new Promise<void>((r) => idleWriters.push(r));
          continue;
        }
        if (lingerMs > 0 && buffer.length < this.maxBatch && !ended) await sleep(lingerMs);
        // A backlog, with or without a linger: the rest of a full batch is in the client's queue,
        // being parsed a slice at a time (nothing queued, as under a steady load: no wait at all).
        const until = Date.now() + FILL_WAIT_MS;
        for (let left = FILL_WAIT_MS; buffer.length < this.maxBatch && !ended && queued() > 0 && left > 0; left = until - Date.now()) {
          await new Promise<void>((r) => {
            const timer = setTimeout(r, left);
            filling.push(() => {
              clearTimeout(timer);
              r();
            });
          });
        }
        if (buffer.length === 0) continue;
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

  private async parse(msg: JsMsg): Promise<Parsed<T>> {
    if (msg.info.redelivered) redeliveries().inc(this.labels);
    let raw: unknown;
    try {
      raw = msg.json();
    } catch (err) {
      await this.deadLetter(msg, 'invalid', err);
      return { ok: false };
    }
    let value: T;
    try {
      value = this.opts.parse(raw);
    } catch (err) {
      if (!this.opts.parseRetryable?.(err)) await this.deadLetter(msg, 'invalid', err);
      else if (msg.info.deliveryCount < this.maxDeliver) this.retryLater(msg, err);
      else await this.deadLetter(msg, 'unreadable_after_retries', err);
      return { ok: false };
    }
    // Delivered beyond the bound without ever being settled (the process died or ack_wait passed
    // each time, or its dead letter could not be published): it is not handed over again.
    if (msg.info.deliveryCount > this.maxDeliver) {
      await this.deadLetter(msg, 'failed_after_retries', new Error(`delivered ${msg.info.deliveryCount} times without being settled`));
      return { ok: false };
    }
    return { ok: true, value };
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
            await this.settleFailure(item.msg, itemErr);
          }
        }
        return;
      }
      // One line per batch: a database outage would otherwise log every message in it.
      const delays = await Promise.all(batch.map((item) => this.settleFailure(item.msg, err, { quiet: true })));
      const retried = delays.filter((d): d is number => d !== undefined);
      if (retried.length > 0) {
        this.opts.logger.warn({ err, size: batch.length, retried: retried.length, nakDelayMs: Math.max(...retried) }, 'batch failed; retrying later');
      }
    }
  }

  /** Dead-letters the message (returns undefined) or nak's it, returning the delay asked for. */
  private async settleFailure(msg: JsMsg, err: unknown, opts: { quiet?: boolean } = {}): Promise<number | undefined> {
    if (this.isPermanent(err)) return this.deadLetter(msg, 'refused', err);
    if (msg.info.deliveryCount >= this.maxDeliver) return this.deadLetter(msg, 'failed_after_retries', err);
    return this.retryLater(msg, err, opts);
  }

  private retryLater(msg: JsMsg, err: unknown, opts: { quiet?: boolean } = {}): number {
    const attempt = msg.info.deliveryCount;
    const delay = nakDelay(attempt, this.backoff);
    if (!opts.quiet) this.opts.logger.warn({ err, subject: msg.subject, seq: msg.seq, attempt, nakDelayMs: delay }, 'message failed; retrying later');
    msg.nak(delay);
    return delay;
  }

  /**
   * Publishes the message to the dead-letter subject and terminates it. Returns undefined when it
   * is settled, or the redelivery delay when the publish failed and the message was nak'ed.
   */
  private async deadLetter(msg: JsMsg, reason: DeadLetterReason, err: unknown): Promise<number | undefined> {
    const attempt = msg.info.deliveryCount;
    const log = { err, reason: errorText(err), deadLetter: reason, subject: msg.subject, seq: msg.seq, attempt };
    const subject = this.opts.deadLetterSubject;
    if (subject !== undefined) {
      const h = headers();
      h.set(DEAD_LETTER_HEADERS.reason, reason);
      h.set(DEAD_LETTER_HEADERS.error, headerSafe(errorText(err)));
      h.set(DEAD_LETTER_HEADERS.subject, msg.subject);
      h.set(DEAD_LETTER_HEADERS.stream, msg.info.stream);
      h.set(DEAD_LETTER_HEADERS.durable, this.opts.durable);
      h.set(DEAD_LETTER_HEADERS.streamSeq, String(msg.seq));
      h.set(DEAD_LETTER_HEADERS.deliveries, String(attempt));
      try {
        // The message id makes a second dead letter of the same message (its term was lost, or
        // another replica got the redelivery) a duplicate the DLQ stream drops.
        await this.opts.ctx.js.publish(subject, msg.data, { headers: h, msgID: `${msg.info.stream}.${this.opts.durable}.${msg.seq}`, timeout: 5_000 });
      } catch (pubErr) {
        const delay = nakDelay(attempt, this.backoff);
        this.opts.logger.error({ ...log, deadLetterError: errorText(pubErr), nakDelayMs: delay }, 'dead letter not published; the message is retried later');
        msg.nak(delay);
        return delay;
      }
    }
    this.opts.logger.error(log, subject === undefined ? 'message cannot be processed, terminated' : 'message cannot be processed, dead-lettered and terminated');
    deadLetters().inc(this.labels);
    // No reason argument: nats-server 2.9 does not parse `+TERM <reason>` and would leave the
    // message pending, to be redelivered after ack_wait. The reason is in the dead letter and the log.
    msg.term();
    return undefined;
  }
}

/**
 * Why a message was dead-lettered: `invalid` (it does not parse: not JSON, unknown type, wrong
 * shape), `unreadable_after_retries` (a parse failure `parseRetryable` called passing, still there
 * after `maxDeliver` deliveries: a schema version newer than the reader), `refused` (the handler
 * called it permanent), `failed_after_retries` (it failed, or was never settled, `maxDeliver` times).
 */
export type DeadLetterReason = 'invalid' | 'unreadable_after_retries' | 'refused' | 'failed_after_retries';

/** The headers of a dead letter; its data is the original message's, byte for byte. */
export const DEAD_LETTER_HEADERS = {
  reason: 'Keyway-Dead-Letter-Reason',
  /** The error's message, on one line, at most 512 characters. */
  error: 'Keyway-Dead-Letter-Error',
  subject: 'Keyway-Original-Subject',
  stream: 'Keyway-Original-Stream',
  durable: 'Keyway-Consumer',
  streamSeq: 'Keyway-Original-Stream-Seq',
  deliveries: 'Keyway-Deliveries',
} as const;

/** A header value may hold neither CR nor LF; an error message may (zod's do). */
const headerSafe = (text: string): string => text.replace(/[\r\n]+/g, ' ').slice(0, 512);
