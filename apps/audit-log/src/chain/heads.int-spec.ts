import { auditHeadSubject, STREAMS } from '@keyway/contracts';
import { jetStreamContext, type JetStreamContext } from '@keyway/messaging';
import { PrivateNats } from '@keyway/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { HeadPublisher } from './heads';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };

describe('the heads stream (a nats-server of its own: the subjects are fixed)', () => {
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

  const publishHead = (tenant: string, position: number) =>
    ctx.js.publish(auditHeadSubject(tenant), JSON.stringify({ tenant_id: tenant, position, hash: 'ab'.repeat(32), linked_at: new Date().toISOString() }));

  it("trims a stream made without a limit to each tenant's latest head, and leaves other tenants' heads alone", async () => {
    // As an audit-log from before the limit left it: every head of every tenant.
    await ctx.jsm.streams.add({ name: 'HEADS_OLD', subjects: [...STREAMS.auditHeads.subjects] });
    for (let position = 1; position <= 5; position++) for (const t of ['ten_a', 'ten_b']) await publishHead(t, position);
    await publishHead('ten_c', 1);

    const heads = new HeadPublisher(ctx, 'HEADS_OLD', 1_000, quiet, 1);
    await heads.ensureStream();

    const info = await ctx.jsm.streams.info('HEADS_OLD', { subjects_filter: '>' });
    expect(info.config.max_msgs_per_subject).toBe(1);
    expect(info.state.subjects).toEqual({ [auditHeadSubject('ten_a')]: 1, [auditHeadSubject('ten_b')]: 1, [auditHeadSubject('ten_c')]: 1 });
    expect((await heads.latest('ten_a'))?.position).toBe(5);
    expect((await heads.latest('ten_b'))?.position).toBe(5);
    expect((await heads.latest('ten_c'))?.position).toBe(1);
    // And from then on, one per tenant as heads come.
    await publishHead('ten_a', 6);
    expect((await ctx.jsm.streams.info('HEADS_OLD')).state.messages).toBe(3);
    expect((await heads.latest('ten_a'))?.position).toBe(6);
  });
});
