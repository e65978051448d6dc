import { PrivateNats } from '@keyway/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetStreamContext, type JetStreamContext, type MinimalLogger } from './connection';
import { awaitStream, ensureStream, STREAM_MAX_MSG_BYTES, StreamMissingError } from './streams';

const TEN_MINUTES_NS = 10 * 60_000 * 1_000_000;

describe('stream ownership: ensureStream for the owner, awaitStream for everyone else', () => {
  let nats: PrivateNats;
  let nc: NatsConnection;
  let ctx: JetStreamContext;

  beforeAll(async () => {
    nats = await PrivateNats.start();
    nc = await connect({ servers: nats.url });
    ctx = await jetStreamContext(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  it("finds an existing stream and leaves the owner's configuration as it is", async () => {
    await ensureStream(ctx.jsm, { name: 'OWNED', subjects: ['owned.>'], duplicateWindowMs: 10 * 60_000 });
    const info = await awaitStream(ctx.jsm, { name: 'OWNED', owner: 'identity' });
    expect(info.config.duplicate_window).toBe(TEN_MINUTES_NS);
    expect((await ctx.jsm.streams.info('OWNED')).config).toMatchObject({ subjects: ['owned.>'], duplicate_window: TEN_MINUTES_NS });
  });

  it('sets explicit limits, and takes one replica where the server is not clustered', async () => {
    const info = await ensureStream(ctx.jsm, { name: 'LIMITS', subjects: ['limits.>'], duplicateWindowMs: 10 * 60_000 });
    expect(info.config).toMatchObject({
      num_replicas: 1,
      retention: 'limits',
      storage: 'file',
      discard: 'new',
      max_msg_size: STREAM_MAX_MSG_BYTES,
      max_bytes: -1,
      max_msgs_per_subject: -1,
      max_age: 0,
      duplicate_window: TEN_MINUTES_NS,
    });
    // A stream made before the limits (defaults: old discard, no size cap) is brought to them.
    await ctx.jsm.streams.add({ name: 'BARE', subjects: ['bare.>'] });
    await ensureStream(ctx.jsm, { name: 'BARE', subjects: ['bare.>'] });
    expect((await ctx.jsm.streams.info('BARE')).config).toMatchObject({ num_replicas: 1, discard: 'new', max_msg_size: STREAM_MAX_MSG_BYTES });
    // Over the cap is refused at publish (the outbox keeps it), under it is stored.
    await expect(ctx.js.publish('limits.big', new Uint8Array(STREAM_MAX_MSG_BYTES + 1))).rejects.toThrow(/maximum message size|message size exceeds/i);
    await expect(ctx.js.publish('limits.ok', new Uint8Array(64 * 1024))).resolves.toMatchObject({ stream: 'LIMITS' });
  });

  it("keeps each subject's latest messages under a per-subject limit: the oldest dropped, no publish refused (discard new governs the stream-wide limits only)", async () => {
    // Made without the limit first, as a stream of an earlier version: the owner brings it to the spec.
    await ensureStream(ctx.jsm, { name: 'PERSUBJECT', subjects: ['persubject.>'] });
    const info = await ensureStream(ctx.jsm, { name: 'PERSUBJECT', subjects: ['persubject.>'], maxMsgsPerSubject: 3 });
    expect(info.config).toMatchObject({ max_msgs_per_subject: 3, discard: 'new', max_age: 0 });
    for (let i = 1; i <= 5; i++) {
      await ctx.js.publish('persubject.a', JSON.stringify({ i }));
      await ctx.js.publish('persubject.b', JSON.stringify({ i: i * 10 }));
    }
    const state = (await ctx.jsm.streams.info('PERSUBJECT', { subjects_filter: '>' })).state;
    expect(state.messages).toBe(6);
    expect(state.subjects).toEqual({ 'persubject.a': 3, 'persubject.b': 3 });
    const last = await ctx.jsm.streams.getMessage('PERSUBJECT', { last_by_subj: 'persubject.a' });
    expect(last?.json()).toEqual({ i: 5 });
    // Unchanged spec: left as it is (no update); a spec without the limit lifts it.
    expect((await ensureStream(ctx.jsm, { name: 'PERSUBJECT', subjects: ['persubject.>'], maxMsgsPerSubject: 3 })).config.max_msgs_per_subject).toBe(3);
    expect((await ensureStream(ctx.jsm, { name: 'PERSUBJECT', subjects: ['persubject.>'] })).config.max_msgs_per_subject).toBe(-1);
  });

  it('waits for the owner to create the stream, then goes on', async () => {
    let created: Promise<unknown> | undefined;
    // The owner creates the stream only once the waiter has looked and not found it.
    const logger: MinimalLogger = {
      info: () => undefined,
      error: () => undefined,
      warn: (obj) => {
        expect(obj).toMatchObject({ stream: 'LATE', owner: 'identity' });
        created ??= ensureStream(ctx.jsm, { name: 'LATE', subjects: ['late.>'], duplicateWindowMs: 10 * 60_000 });
      },
    };
    const info = await awaitStream(ctx.jsm, { name: 'LATE', owner: 'identity', pollMs: 20, logger });
    expect(created).toBeDefined();
    await created;
    expect(info.config).toMatchObject({ name: 'LATE', duplicate_window: TEN_MINUTES_NS });
  });

  it('fails after the bounded wait, naming the stream and the service that owns it, and creates nothing', async () => {
    const waiting = awaitStream(ctx.jsm, { name: 'NEVER', owner: 'identity', timeoutMs: 200, pollMs: 20 });
    await expect(waiting).rejects.toThrow(StreamMissingError);
    await expect(waiting).rejects.toThrow(/stream NEVER does not exist .* created and configured by identity only: start identity/);
    await expect(ctx.jsm.streams.info('NEVER')).rejects.toThrow(/not found/);
  });
});
