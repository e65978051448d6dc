import { PrivateNats } from '@keyway/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetStreamContext, type JetStreamContext, type MinimalLogger } from './connection';
import { awaitStream, ensureStream, StreamMissingError } from './streams';

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

  it('waits for the owner to create the stream, then goes on', async () => {
    let created: Promise<void> | undefined;
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
