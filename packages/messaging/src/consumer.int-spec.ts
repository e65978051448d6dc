import { performance } from 'node:perf_hooks';
import { PrivateNats, eventually } from '@keyway/testing';
import { AckPolicy } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetStreamContext, type JetStreamContext, type MinimalLogger } from './connection';
import { DEAD_LETTER_HEADERS, DurableConsumer, FILL_WAIT_MS, PARSE_SLICE, type BatchItem, type DurableConsumerOptions } from './consumer';
import { ensureStream } from './streams';

type Line = { level: 'info' | 'warn' | 'error'; obj: Record<string, unknown>; msg: string | undefined };
type Body = { n: number; bad?: boolean };

class Permanent extends Error {}

function recordingLogger(): MinimalLogger & { lines: Line[] } {
  const lines: Line[] = [];
  const at = (level: Line['level']) => (obj: object, msg?: string) => lines.push({ level, obj: obj as Record<string, unknown>, msg });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

const parseBody = (raw: unknown): Body => {
  const n = (raw as { n?: unknown } | null)?.n;
  if (typeof n !== 'number') throw new Error('n must be a number');
  return raw as Body;
};

describe('DurableConsumer against a real nats-server', () => {
  let nats: PrivateNats;
  let nc: NatsConnection;
  let ctx: JetStreamContext;
  let running: Array<DurableConsumer<Body>> = [];
  let round = 0;
  let stream = '';
  let subject = '';

  /** Stream sequences the server terminated (its advisory), with the delivery count it saw. */
  const terminated = new Map<string, Array<{ seq: number; deliveries: number }>>();

  const start = async (opts: Partial<DurableConsumerOptions<Body>> & Pick<DurableConsumerOptions<Body>, 'handle'>) => {
    const consumer = await DurableConsumer.start<Body>({
      ctx,
      stream,
      durable: 'test',
      filterSubject: `${subject}.>`,
      parse: parseBody,
      logger: recordingLogger(),
      restartDelayMs: 50,
      ...opts,
    });
    running.push(consumer);
    return consumer;
  };
  const publish = async (body: unknown): Promise<number> =>
    (await ctx.js.publish(`${subject}.x`, typeof body === 'string' ? body : JSON.stringify(body))).seq;
  const info = () => ctx.jsm.consumers.info(stream, 'test');

  beforeAll(async () => {
    nats = await PrivateNats.start();
    nc = await connect({ servers: nats.url });
    ctx = await jetStreamContext(nc);
    nc.subscribe('$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.>', {
      callback: (_err, m) => {
        const a = m.json<{ stream: string; stream_seq: number; deliveries: number }>();
        terminated.set(a.stream, [...(terminated.get(a.stream) ?? []), { seq: a.stream_seq, deliveries: a.deliveries }]);
      },
    });
  });
  beforeEach(async () => {
    round += 1;
    stream = `CONSUMER_T${round}`;
    subject = `t${round}`;
    await ensureStream(ctx.jsm, { name: stream, subjects: [`${subject}.>`] });
  });
  afterEach(async () => {
    await Promise.all(running.map((c) => c.stop()));
    running = [];
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  it('redelivers a failing message after a delay that grows with each delivery, capped, and terminates it after maxDeliver', async () => {
    const logger = recordingLogger();
    const calls: Array<{ attempt: number; at: number }> = [];
    await start({
      logger,
      maxDeliver: 5,
      nakDelayMs: 100,
      maxNakDelayMs: 400,
      handle: async (items) => {
        for (const { msg } of items) calls.push({ attempt: msg.info.deliveryCount, at: performance.now() });
        throw new Error('database unavailable');
      },
    });
    const seq = await publish({ n: 1 });

    await eventually(async () => terminated.get(stream)?.some((t) => t.seq === seq), 20_000);
    expect(terminated.get(stream)).toEqual([{ seq, deliveries: 5 }]);
    expect(calls.map((c) => c.attempt)).toEqual([1, 2, 3, 4, 5]);
    // What the consumer asked the server for: doubling from nakDelayMs, capped at maxNakDelayMs.
    const delays = logger.lines.filter((l) => l.msg === 'batch failed; retrying later').map((l) => l.obj.nakDelayMs);
    expect(delays).toEqual([100, 200, 400, 400]);
    // And the server held each redelivery back at least that long (a lower bound: load only adds).
    calls.slice(1).forEach((c, i) => expect(c.at - calls[i]!.at).toBeGreaterThanOrEqual(Number(delays[i]) - 5));
    const last = logger.lines.find((l) => l.msg === 'message cannot be processed, terminated');
    expect(last?.obj).toMatchObject({ seq, attempt: 5, deadLetter: 'failed_after_retries' });
    expect((await info()).num_ack_pending).toBe(0);
  });

  it('terminates a message that does not parse at once, logs why, and goes on with the next', async () => {
    const logger = recordingLogger();
    const handled: number[] = [];
    await start({
      logger,
      handle: async (items) => {
        handled.push(...items.map((i) => i.value.n));
      },
    });
    const notJson = await publish('not json at all');
    const wrongShape = await publish({ n: 'one' });
    await publish({ n: 1 });

    await eventually(async () => handled.includes(1) && (terminated.get(stream)?.length ?? 0) >= 2);
    expect(handled).toEqual([1]);
    expect(terminated.get(stream)).toEqual([
      { seq: notJson, deliveries: 1 },
      { seq: wrongShape, deliveries: 1 },
    ]);
    const invalid = logger.lines.filter((l) => l.msg === 'message cannot be processed, terminated');
    expect(invalid.map((l) => [l.level, l.obj.seq])).toEqual([
      ['error', notJson],
      ['error', wrongShape],
    ]);
    expect(invalid[1]?.obj.reason).toBe('n must be a number');
    expect(invalid[0]?.obj.reason).toMatch(/JSON/);
    await eventually(async () => (await info()).num_ack_pending === 0);
    expect((await info()).num_redelivered).toBe(0);
  });

  it('redelivers with backoff a message whose parse failure may pass later (a newer schema version), then terminates it', async () => {
    class TooNew extends Error {}
    const handled: number[] = [];
    await start({
      maxDeliver: 3,
      nakDelayMs: 50,
      parse: (raw) => {
        if ((raw as { v?: number }).v === 2) throw new TooNew('schema version 2 is newer than this reader');
        return parseBody(raw);
      },
      parseRetryable: (err) => err instanceof TooNew,
      handle: async (items) => {
        handled.push(...items.map((i) => i.value.n));
      },
    });
    const tooNew = await publish({ n: 1, v: 2 });
    const invalid = await publish({ n: 'x' });
    await publish({ n: 3 });
    await eventually(async () => (terminated.get(stream)?.length ?? 0) >= 2 && handled.includes(3), 20_000);
    // The invalid one is terminated at its first delivery, the too-new one only after maxDeliver.
    expect(terminated.get(stream)).toEqual(expect.arrayContaining([{ seq: invalid, deliveries: 1 }, { seq: tooNew, deliveries: 3 }]));
    expect(handled).toEqual([3]);
  });

  it('acks a batch only after its handler resolved, and hands over what arrived meanwhile as one batch', async () => {
    const held = gate();
    const batches: number[][] = [];
    await start({
      writers: 1,
      handle: async (items) => {
        batches.push(items.map((i) => i.value.n));
        if (batches.length === 1) await held.wait;
      },
    });
    for (let n = 1; n <= 5; n++) await publish({ n });

    // Every message is with the consumer, and not one is acked while the first batch is in hand.
    await eventually(async () => (await info()).num_ack_pending === 5);
    expect((await info()).ack_floor.stream_seq).toBe(0);
    held.open();
    await eventually(async () => {
      const i = await info();
      return i.num_ack_pending === 0 && i.ack_floor.stream_seq === 5;
    });
    expect(batches.flat()).toEqual([1, 2, 3, 4, 5]);
    expect(Math.max(...batches.map((b) => b.length))).toBeGreaterThan(1);
  });

  describe('a backlog', () => {
    /** A parse that takes `us` microseconds of CPU, as a real event's validation does. */
    const slowParse = (us: number, seen: () => void) => (raw: unknown): Body => {
      const until = performance.now() + us / 1000;
      while (performance.now() < until);
      seen();
      return parseBody(raw);
    };
    const publishMany = async (count: number): Promise<void> => {
      for (let n = 1; n <= count; n += 1) void ctx.js.publish(`${subject}.x`, JSON.stringify({ n }));
      await eventually(async () => (await ctx.jsm.streams.info(stream)).state.messages === count);
    };

    it('is parsed a slice at a time: the event loop turns between slices, so I/O (a writer\'s database replies) is not held for a whole batch', async () => {
      await publishMany(3_000);
      let parsed = 0;
      let most = 0;
      let ticking = true;
      // Parses between two turns of the event loop.
      let atTurn = 0;
      const tick = (): void => {
        most = Math.max(most, parsed - atTurn);
        atTurn = parsed;
        if (ticking) setImmediate(tick);
      };
      setImmediate(tick);
      const handled: number[] = [];
      await start({ maxBatch: 1_000, writers: 1, lingerMs: 5, parse: slowParse(5, () => (parsed += 1)), handle: async (items) => void handled.push(...items.map((i) => i.value.n)) });
      await eventually(async () => handled.length === 3_000);
      ticking = false;
      // Before: after each full batch was taken, the next 1,000 were parsed in one go.
      expect(most).toBeGreaterThan(0);
      expect(most).toBeLessThanOrEqual(PARSE_SLICE);
      expect(new Set(handled).size).toBe(3_000);
    });

    it.each([5, 0])('still fills whole batches while it is parsed a slice at a time (linger %i ms): a writer back early waits for the rest, already in the client\'s queue', async (lingerMs) => {
      await publishMany(2_000);
      const held = gate();
      const sizes: number[] = [];
      await start({
        maxBatch: 500,
        writers: 1,
        lingerMs,
        // 500 parses take 10 ms, twice the linger: a writer that took what was parsed by then took half a batch.
        parse: slowParse(20, () => undefined),
        handle: async (items) => {
          sizes.push(items.length);
          if (sizes.length === 1) await held.wait;
        },
      });
      // The first batch is held: the buffer fills (500) and the client pulls up to 500 more.
      await eventually(async () => (await info()).num_ack_pending >= 500 + sizes[0]!);
      await new Promise((r) => setTimeout(r, 100));
      held.open();
      await eventually(async () => sizes.reduce((a, b) => a + b, 0) === 2_000);
      // The second batch is the full buffer; the third was parsed from the client's queue after the writer came back.
      expect(sizes[1]).toBe(500);
      expect(sizes[2]).toBe(500);
    });

    it('does not hold back a lone message: an idle consumer hands it over after the linger, not after the fill wait', async () => {
      const at: number[] = [];
      await start({ maxBatch: 500, writers: 1, lingerMs: 5, handle: async () => void at.push(performance.now()) });
      const took: number[] = [];
      for (let i = 0; i < 5; i += 1) {
        const sent = performance.now();
        await publish({ n: i });
        await eventually(async () => at.length === i + 1);
        took.push(at[i]! - sent);
      }
      // A queue count that stayed above zero while idle would make every one wait FILL_WAIT_MS.
      expect(Math.min(...took)).toBeLessThan(FILL_WAIT_MS / 2);
    });
  });

  it('does not ack a batch whose handler failed', async () => {
    const failed = gate();
    await start({
      nakDelayMs: 60_000,
      handle: async () => {
        failed.open();
        throw new Error('no');
      },
    });
    await publish({ n: 1 });
    await failed.wait;
    // nak'ed for a minute: pending redelivery, never acked.
    await eventually(async () => (await info()).num_ack_pending === 1);
    expect((await info()).ack_floor.stream_seq).toBe(0);
  });

  it('isolates a message the handler refuses for good: the rest of its batch is acked, it alone is terminated', async () => {
    const handled: number[] = [];
    const held = gate();
    await start({
      writers: 1,
      isPermanent: (err) => err instanceof Permanent,
      handle: async (items: ReadonlyArray<BatchItem<Body>>) => {
        if (items.some((i) => i.value.n === 0)) await held.wait; // the first batch waits for the rest to arrive
        if (items.some((i) => i.value.bad)) throw new Permanent('refused');
        handled.push(...items.map((i) => i.value.n));
      },
    });
    await publish({ n: 0 });
    const seqs = [await publish({ n: 1 }), await publish({ n: 2, bad: true }), await publish({ n: 3 })];
    await eventually(async () => (await info()).num_ack_pending === 4);
    held.open();

    await eventually(async () => handled.length === 3 && (terminated.get(stream)?.length ?? 0) === 1);
    expect(handled.sort((a, b) => a - b)).toEqual([0, 1, 3]);
    expect(terminated.get(stream)).toEqual([{ seq: seqs[1], deliveries: 1 }]);
    await eventually(async () => (await info()).num_ack_pending === 0);
    expect((await info()).num_redelivered).toBe(0);
  });

  it('takes over a durable made before dead letters, whose server-side max_deliver would drop a message unseen', async () => {
    await ctx.jsm.consumers.add(stream, { durable_name: 'test', filter_subject: `${subject}.>`, ack_policy: AckPolicy.Explicit, max_deliver: 10 });
    await start({ handle: async () => undefined });
    expect((await info()).config.max_deliver).toBe(-1);
  });

  describe('poison messages go to the dead-letter stream', () => {
    let dlq = '';
    let dlqSubject = '';
    type DeadLetter = { seq: number; data: string; headers: Record<string, string> };
    /** Every message in the DLQ stream, with its headers. */
    const deadLetters = async (): Promise<DeadLetter[]> => {
      const out: DeadLetter[] = [];
      const last = (await ctx.jsm.streams.info(dlq)).state.last_seq;
      for (let seq = 1; seq <= last; seq++) {
        const m = await ctx.jsm.streams.getMessage(dlq, { seq }).catch(() => undefined);
        if (!m) continue;
        const headers: Record<string, string> = {};
        for (const name of Object.values(DEAD_LETTER_HEADERS)) headers[name] = m.header?.get(name) ?? '';
        out.push({ seq, data: m.string(), headers });
      }
      return out;
    };
    const startWithDlq = (opts: Partial<DurableConsumerOptions<Body>> & Pick<DurableConsumerOptions<Body>, 'handle'>) =>
      start({ deadLetterSubject: dlqSubject, ...opts });

    beforeEach(async () => {
      dlq = `DLQ_T${round}`;
      dlqSubject = `dlq${round}.${stream}.test`;
      await ensureStream(ctx.jsm, { name: dlq, subjects: [`dlq${round}.>`] });
    });

    it('publishes each kind of poison with its data and reason, terminates it, and processes the messages behind it', async () => {
      class TooNew extends Error {}
      const handled: number[] = [];
      await startWithDlq({
        maxDeliver: 3,
        nakDelayMs: 50,
        isPermanent: (err) => err instanceof Permanent,
        parse: (raw) => {
          if ((raw as { v?: number }).v === 9) throw new TooNew('schema version 9 is newer than this reader');
          return parseBody(raw);
        },
        parseRetryable: (err) => err instanceof TooNew,
        handle: async (items) => {
          for (const { value } of items) if (value.bad) throw new Permanent('refused: bad data');
          handled.push(...items.map((i) => i.value.n));
        },
      });
      const notJson = await publish('{not json');
      const wrongShape = await publish({ n: 'one' });
      const tooNew = await publish({ n: 2, v: 9 });
      const refused = await publish({ n: 3, bad: true });
      await publish({ n: 4 });
      await publish({ n: 5 });

      await eventually(async () => (await deadLetters()).length === 4 && handled.includes(5), 20_000);
      expect(handled).toEqual([4, 5]);
      const letters = await deadLetters();
      const bySeq = new Map(letters.map((l) => [Number(l.headers[DEAD_LETTER_HEADERS.streamSeq]), l]));
      expect(bySeq.get(notJson)).toMatchObject({ data: '{not json', headers: { [DEAD_LETTER_HEADERS.reason]: 'invalid', [DEAD_LETTER_HEADERS.deliveries]: '1' } });
      expect(bySeq.get(notJson)?.headers[DEAD_LETTER_HEADERS.error]).toMatch(/JSON/);
      expect(bySeq.get(wrongShape)).toMatchObject({ data: JSON.stringify({ n: 'one' }), headers: { [DEAD_LETTER_HEADERS.reason]: 'invalid', [DEAD_LETTER_HEADERS.error]: 'n must be a number' } });
      expect(bySeq.get(tooNew)?.headers).toMatchObject({ [DEAD_LETTER_HEADERS.reason]: 'unreadable_after_retries', [DEAD_LETTER_HEADERS.deliveries]: '3' });
      expect(bySeq.get(refused)?.headers).toEqual({
        [DEAD_LETTER_HEADERS.reason]: 'refused',
        [DEAD_LETTER_HEADERS.error]: 'refused: bad data',
        [DEAD_LETTER_HEADERS.subject]: `${subject}.x`,
        [DEAD_LETTER_HEADERS.stream]: stream,
        [DEAD_LETTER_HEADERS.durable]: 'test',
        [DEAD_LETTER_HEADERS.streamSeq]: String(refused),
        [DEAD_LETTER_HEADERS.deliveries]: '1',
      });
      // Each one terminated after its dead letter, nothing left pending.
      await eventually(async () => (terminated.get(stream)?.length ?? 0) === 4);
      expect(terminated.get(stream)?.map((t) => t.seq).sort((a, b) => a - b)).toEqual([notJson, wrongShape, tooNew, refused]);
      await eventually(async () => (await info()).num_ack_pending === 0 && (await info()).num_pending === 0);
    });

    it('dead-letters, without handing it over again, a message delivered beyond the bound without ever being settled (a crash each time)', async () => {
      const hung = gate();
      const calls: number[] = [];
      // Each delivery hangs its writer past ack_wait, as a process that dies mid-batch would.
      await startWithDlq({ maxDeliver: 2, ackWaitMs: 1_000, writers: 3, handle: async (items) => {
        calls.push(...items.map((i) => i.msg.info.deliveryCount));
        await hung.wait;
      } });
      const seq = await publish({ n: 1 });
      try {
        await eventually(async () => (await deadLetters()).length === 1, 20_000);
        expect(calls).toEqual([1, 2]);
        expect((await deadLetters())[0]?.headers).toMatchObject({
          [DEAD_LETTER_HEADERS.reason]: 'failed_after_retries',
          [DEAD_LETTER_HEADERS.streamSeq]: String(seq),
          [DEAD_LETTER_HEADERS.deliveries]: '3',
        });
      } finally {
        hung.open();
      }
    });

    it('dead-letters a message that failed maxDeliver times', async () => {
      await startWithDlq({ maxDeliver: 2, nakDelayMs: 50, handle: async () => Promise.reject(new Error('database unavailable')) });
      const seq = await publish({ n: 1 });
      await eventually(async () => (await deadLetters()).length === 1, 20_000);
      expect((await deadLetters())[0]?.headers).toMatchObject({
        [DEAD_LETTER_HEADERS.reason]: 'failed_after_retries',
        [DEAD_LETTER_HEADERS.error]: 'database unavailable',
        [DEAD_LETTER_HEADERS.streamSeq]: String(seq),
        [DEAD_LETTER_HEADERS.deliveries]: '2',
      });
    });

    it('never acks or terminates a poison message while its dead letter cannot be published: it lands there once the DLQ is back', async () => {
      await ctx.jsm.streams.delete(dlq);
      const logger = recordingLogger();
      const handled: number[] = [];
      await startWithDlq({
        logger,
        nakDelayMs: 100,
        maxNakDelayMs: 200,
        handle: async (items) => {
          handled.push(...items.map((i) => i.value.n));
        },
      });
      const poison = await publish('not json');
      await publish({ n: 7 });
      // The one behind it is processed meanwhile; the poison is retried, never settled.
      await eventually(async () => handled.includes(7) && logger.lines.filter((l) => l.msg === 'dead letter not published; the message is retried later').length >= 2, 20_000);
      expect(terminated.get(stream)).toBeUndefined();
      expect((await info()).num_ack_pending).toBe(1);
      expect((await info()).ack_floor.stream_seq).toBe(0);

      await ensureStream(ctx.jsm, { name: dlq, subjects: [`dlq${round}.>`] });
      await eventually(async () => (await deadLetters()).length === 1 && (terminated.get(stream)?.length ?? 0) === 1, 20_000);
      const [letter] = await deadLetters();
      expect(letter).toMatchObject({ data: 'not json', headers: { [DEAD_LETTER_HEADERS.reason]: 'invalid', [DEAD_LETTER_HEADERS.streamSeq]: String(poison) } });
      expect(Number(letter?.headers[DEAD_LETTER_HEADERS.deliveries])).toBeGreaterThan(1);
      await eventually(async () => (await info()).num_ack_pending === 0);
    });
  });

  it('stop() lets the batch in hand finish and be acked before it resolves', async () => {
    const held = gate();
    const consumer = await start({ handle: () => held.wait });
    await publish({ n: 1 });
    await eventually(async () => (await info()).num_ack_pending === 1);
    expect(consumer.isConsuming).toBe(true);
    const stopped = consumer.stop();
    held.open();
    await stopped;
    expect(consumer.isConsuming).toBe(false);
    await eventually(async () => (await info()).ack_floor.stream_seq === 1);
  });
});
