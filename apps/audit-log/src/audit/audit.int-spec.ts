import { randomBytes } from 'node:crypto';
import { EVENT_SUBJECTS, eventSubject, newId, Rpc, type AuditEntry, type KeyEvent, type Page } from '@keyway/contracts';
import { ensureStream, jetStreamContext, publishEvent, type JetStreamContext } from '@keyway/messaging';
import { httpAddress, loadConfig, startService } from '@keyway/runtime';
import { eventually, startInfra, type TestInfra } from '@keyway/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { INestApplication } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AppModule } from '../app.module';
import { AuditLogEnv, SERVICE, type AuditLogConfig } from '../config';
import { AuditEventsRepository } from './audit-events.repository';
import { ChainService } from '../chain/chain.service';
import { AuditIngestService } from './audit-ingest.service';

type Reply = { response?: Page<AuditEntry>; err?: { code: string } };

/** The duplicate window identity (the stream's owner) gives KEYWAY; audit-log's boot must keep it. */
const IDENTITY_WINDOW_MS = 10 * 60_000;

describe('audit-log over NATS and JetStream', () => {
  let infra: TestInfra;
  let app: INestApplication;
  let nc: NatsConnection;
  let jet: JetStreamContext;
  let ds: DataSource;
  let config: AuditLogConfig;
  const T0 = Date.parse('2025-01-01T00:00:00.000Z');

  const at = (seconds: number): string => new Date(T0 + seconds * 1_000).toISOString();
  const ctx = (tenant: string) => ({ tenant_id: tenant, actor: { type: 'key', id: 'key_caller' }, request_id: 'req_1', scopes: ['audit:read'] });
  const logs = async (tenant: string, keyId: string, query: Record<string, unknown> = {}): Promise<Reply> => {
    const data = { ctx: ctx(tenant), params: { id: keyId }, query };
    const m = await nc.request(Rpc.auditKeyLogs, JSON.stringify({ pattern: Rpc.auditKeyLogs, data, id: '1' }), { timeout: 5_000 });
    return m.json<Reply>();
  };
  const rowsWithId = async (id: string): Promise<number> =>
    Number((await ds.query<Array<{ n: string }>>('SELECT count(*) AS n FROM audit_events WHERE id = $1', [id]))[0]?.n);
  const recorded = async (ids: string[]): Promise<number> =>
    Number((await ds.query<Array<{ n: string }>>('SELECT count(*) AS n FROM audit_events WHERE id = ANY($1)', [ids]))[0]?.n);
  const consumerSettled = () =>
    eventually(async () => {
      const info = await jet.jsm.consumers.info(infra.stream, 'audit-log');
      return info.num_pending === 0 && info.num_ack_pending === 0;
    });

  function keyEvent(tenant: string, keyId: string, type: KeyEvent['type'], occurredAt: string): KeyEvent {
    const base = { id: newId('event'), schema_version: 1 as const, occurred_at: occurredAt, tenant_id: tenant, key_id: keyId, prefix: 'kw_test_abcd1234', actor: { type: 'user' as const, id: 'usr_1' } };
    switch (type) {
      case 'created':
        return { ...base, type, data: { name: 'ci', scopes: ['keys:read'], environment: 'test', expires_at: null, rate_limit: null, metadata: {} } };
      case 'updated':
        return { ...base, type, data: { name: 'ci-2' } };
      case 'enabled':
      case 'disabled':
        return { ...base, type, data: {} };
      case 'rotated':
        return { ...base, type, data: { previous_prefix: 'kw_test_zzzz9999', previous_valid_until: null } };
      case 'rotation_completed':
        return { ...base, type, data: { ended_prefixes: ['kw_test_zzzz9999'] } };
      case 'revoked':
        return { ...base, type, data: { reason: null } };
      case 'expired':
        return { ...base, type, data: { expires_at: occurredAt } };
      case 'used':
        return { ...base, type, actor: { type: 'system', id: 'gateway' }, data: { count: 42, rate_limited: 0, first_at: occurredAt, last_at: occurredAt, scopes_used: null, secret: 'current' } };
    }
  }
  const publish = (e: KeyEvent) => publishEvent(jet.js, eventSubject(e.type), e);

  beforeAll(async () => {
    infra = await startInfra('audit');
    nc = await connect({ servers: infra.natsUrl, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    jet = await jetStreamContext(nc);
    // The stream's owner is identity: here the test creates it as identity does.
    await ensureStream(jet.jsm, { name: infra.stream, subjects: [EVENT_SUBJECTS], duplicateWindowMs: IDENTITY_WINDOW_MS });
    config = loadConfig(AuditLogEnv, { ...infra.env, AUDIT_NAK_DELAY_MS: '200', AUDIT_CHAIN_KEY: randomBytes(32).toString('hex'), AUDIT_HEAD_PUBLISH_MS: '50', AUDIT_ACK_WAIT_MS: '5000' });
    app = await startService({ name: SERVICE, module: AppModule.forRoot(config), config });
    ds = app.get(DataSource);
  });
  afterEach(() => jest.restoreAllMocks());
  afterAll(async () => {
    await nc?.close();
    await app?.close();
    await infra?.stop();
  });

  it('leaves the stream as its owner configured it: booting audit-log changes neither subjects nor duplicate window', async () => {
    const info = await jet.jsm.streams.info(infra.stream);
    expect(info.config.subjects).toEqual(['keyway.keys.>']);
    expect(info.config.duplicate_window).toBe(IDENTITY_WINDOW_MS * 1_000_000);
  });

  it("keeps only each tenant's latest head on the heads stream by default: its per-subject limit is 1", async () => {
    // nats-server 2.9's file store finds a subject's next-oldest message by scanning its block when
    // it drops one under a limit above 1: 234 µs of server CPU per head with 1,000 tenants, 417 µs
    // with 3,000 (a flush of 3,000 heads took longer than the second between two flushes), against
    // 30–45 µs at 1 (`npm run bench -- audit-heads-stream`). Verify reads only the latest head.
    const info = await jet.jsm.streams.info(config.AUDIT_HEADS_STREAM);
    expect(config.AUDIT_HEADS_KEPT).toBe(1);
    expect(info.config).toMatchObject({ max_msgs_per_subject: 1, max_age: 0 });
  });

  it('waits for the stream rather than creating it, and fails naming the stream and its owner', async () => {
    const missing = `${infra.stream}_MISSING`;
    const ingest = new AuditIngestService(nc, { ...config, KEYWAY_STREAM: missing, AUDIT_STREAM_WAIT_MS: 300 }, app.get(AuditEventsRepository), app.get(ChainService));
    try {
      await expect(ingest.onApplicationBootstrap()).rejects.toThrow(new RegExp(`stream ${missing} does not exist .* by identity only`));
    } finally {
      await ingest.beforeApplicationShutdown();
    }
    await expect(jet.jsm.streams.info(missing)).rejects.toThrow(/not found/);
  });

  it('serves a key trail newest first, paginated; a used event still on this stream is skipped', async () => {
    const key = newId('key');
    const created = keyEvent('ten_a', key, 'created', at(0));
    const updated = keyEvent('ten_a', key, 'updated', at(10));
    const used = keyEvent('ten_a', key, 'used', at(20));
    const disabledFirst = keyEvent('ten_a', key, 'disabled', at(30));
    const enabledSameInstant = keyEvent('ten_a', key, 'enabled', at(30)); // later in the stream: shown first
    const otherKey = keyEvent('ten_a', newId('key'), 'created', at(5));
    // Out of time order on purpose: the trail is ordered by occurred_at, not arrival.
    for (const e of [used, created, otherKey, disabledFirst, enabledSameInstant, updated]) await publish(e);

    const page = await eventually(async () => {
      const r = await logs('ten_a', key, { pageSize: '10' });
      // The page and its total are two reads: wait until both saw every entry linked.
      return r.response?.total === 4 && r.response.data.length === 4 ? r.response : undefined;
    });
    expect(page.data.map((e) => e.id)).toEqual([enabledSameInstant.id, disabledFirst.id, updated.id, created.id]);
    expect(page).toMatchObject({ page: 1, pageSize: 10, total: 4, hasMore: false });
    expect(page.data[2]).toEqual({
      id: updated.id,
      type: 'updated',
      occurred_at: at(10),
      key_id: key,
      prefix: 'kw_test_abcd1234',
      environment: 'test',
      actor: { type: 'user', id: 'usr_1' },
      changes: { name: 'ci-2' },
    });
    expect(await rowsWithId(used.id)).toBe(0);

    const first = (await logs('ten_a', key, { page: '1', pageSize: '2' })).response;
    expect(first?.data.map((e) => e.id)).toEqual([enabledSameInstant.id, disabledFirst.id]);
    expect(first).toMatchObject({ total: 4, hasMore: true });
    const next = (await logs('ten_a', key, { pageSize: '2', after: first?.next_cursor })).response;
    expect(next?.data.map((e) => e.id)).toEqual([updated.id, created.id]);
    expect(next?.next_cursor).toBeNull();
    const last = (await logs('ten_a', key, { page: '2', pageSize: '3' })).response;
    expect(last?.data.map((e) => e.id)).toEqual([created.id]);
    expect(last?.hasMore).toBe(false);
  });

  it('is not_found for another tenant and for a key with no events; invalid_request for a bad page', async () => {
    const key = newId('key');
    const e = keyEvent('ten_owner', key, 'created', at(0));
    await publish(e);
    await eventually(async () => (await logs('ten_owner', key)).response?.total === 1);

    expect((await logs('ten_other', key)).err?.code).toBe('not_found');
    // The key is a test key (kw_test_): a live key of the same tenant does not see its trail.
    const asLive = { ctx: { ...ctx('ten_owner'), environment: 'live' }, params: { id: key }, query: {} };
    const live = await nc.request(Rpc.auditKeyLogs, JSON.stringify({ pattern: Rpc.auditKeyLogs, data: asLive, id: '1' }), { timeout: 5_000 });
    expect(live.json<Reply>().err?.code).toBe('not_found');
    const asTest = { ...asLive, ctx: { ...asLive.ctx, environment: 'test' } };
    const test = await nc.request(Rpc.auditKeyLogs, JSON.stringify({ pattern: Rpc.auditKeyLogs, data: asTest, id: '1' }), { timeout: 5_000 });
    expect(test.json<Reply>().response?.total).toBe(1);
    expect((await logs('ten_owner', newId('key'))).err?.code).toBe('not_found');
    expect((await logs('ten_owner', key, { pageSize: '51' })).err?.code).toBe('invalid_request');
    expect((await logs('ten_owner', key, { page: '0' })).err?.code).toBe('invalid_request');
    // Past the last page is an empty page, not a 404: the key exists.
    expect((await logs('ten_owner', key, { page: '9' })).response).toMatchObject({ data: [], total: 1, hasMore: false });
  });

  it('stores an event once however often it is published', async () => {
    const key = newId('key');
    const e = keyEvent('ten_a', key, 'revoked', at(0));
    const first = await publish(e);
    const again = await publish(e); // inside the duplicate window: JetStream drops it
    expect(again.duplicate).toBe(true);
    expect(again.seq).toBe(first.seq);
    // A republish after the duplicate window: a second stream message with the same event id.
    const later = await jet.js.publish(eventSubject(e.type), JSON.stringify(e));
    expect(later.seq).toBeGreaterThan(first.seq);
    const marker = keyEvent('ten_a', key, 'expired', at(1));
    await publish(marker);

    await eventually(async () => (await rowsWithId(marker.id)) === 1);
    await consumerSettled();
    expect(await rowsWithId(e.id)).toBe(1);
    await eventually(async () => (await logs('ten_a', key)).response?.total === 2);
    expect(await rowsWithId(e.id)).toBe(1);
  });

  it('retries a failed batch, and a batch written but not acked changes nothing when redelivered', async () => {
    // The store path batches take with the chain on (linked as stored, or sealed for the linker).
    const chain = app.get(ChainService);
    const real = chain.store.bind(chain);
    const spy = jest
      .spyOn(chain, 'store')
      .mockRejectedValueOnce(new Error('database unavailable')) // before anything was written
      .mockImplementationOnce(async (records, settled) => {
        await real(records, settled);
        throw new Error('connection lost after commit'); // written, but the ack never happens
      });

    const key = newId('key');
    const e = keyEvent('ten_a', key, 'rotated', at(0));
    await publish(e);

    await eventually(async () => spy.mock.calls.length >= 3 && (await rowsWithId(e.id)) === 1);
    await consumerSettled();
    expect(await rowsWithId(e.id)).toBe(1);
    const deliveredIds = spy.mock.calls.map(([records]) => records.map((r) => r.event.id));
    expect(deliveredIds.filter((ids) => ids.includes(e.id)).length).toBeGreaterThanOrEqual(3);
  });

  it('terminates invalid messages without blocking the ones after them', async () => {
    const key = newId('key');
    const subject = eventSubject('created');
    const badTime = { ...keyEvent('ten_a', key, 'created', at(0)), occurred_at: 'yesterday' };
    const wrongShape = { id: newId('event'), type: 'created', tenant_id: 'ten_a', key_id: key };
    await jet.js.publish(subject, 'not json at all');
    await jet.js.publish(subject, JSON.stringify(wrongShape));
    await jet.js.publish(subject, JSON.stringify(badTime));
    const good = keyEvent('ten_a', key, 'updated', at(1));
    await publish(good);

    await eventually(async () => (await rowsWithId(good.id)) === 1);
    await consumerSettled();
    expect(await recorded([wrongShape.id, badTime.id])).toBe(0);
    const info = await jet.jsm.consumers.info(infra.stream, 'audit-log');
    expect(info.num_redelivered).toBe(0);
  });

  it('is ready while database, NATS and the consumer are', async () => {
    const res = await fetch(`${httpAddress(app)}/health/ready`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok', info: { database: { status: 'up' }, nats: { status: 'up' }, consumer: { status: 'up' } } });
  });

  it('resumes after NATS restarts and loses nothing', async () => {
    const nats = infra.nats;
    if (!nats) throw new Error('this test needs a private nats-server');
    const key = newId('key');
    const before = Array.from({ length: 300 }, (_, i) => keyEvent('ten_r', key, 'updated', at(i)));
    const after = Array.from({ length: 300 }, (_, i) => keyEvent('ten_r', key, 'updated', at(1_000 + i)));
    await Promise.all(before.map(publish));
    await nats.restart(); // SIGKILL: some of `before` may be delivered and not yet acked

    // The client reconnects on its own; publish each event until JetStream acknowledges it.
    for (const e of after) await eventually(() => publish(e), 20_000, 100);

    const all = [...before, ...after].map((e) => e.id);
    await eventually(async () => (await recorded(all)) === all.length, 30_000, 200);
    // Stored is not yet shown: the trail shows linked entries, linked once the ack floor passes them,
    // and an ack lost in the crash holds the floor until that message's redelivery (ack wait).
    const newest = await eventually(async () => {
      const r = (await logs('ten_r', key, { pageSize: '1' })).response;
      // The page and its total are two concurrent reads: wait until both saw the last one linked.
      return r?.total === 600 && r.data[0]?.id === after[299]?.id ? r : undefined;
    }, 30_000, 100);
    expect(newest.data[0]?.id).toBe(after[299]?.id);
    await eventually(async () => (await fetch(`${httpAddress(app)}/health/ready`)).status === 200);
  });
});
