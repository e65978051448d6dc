import {
  deadLetterSubject,
  eventFixtures,
  eventSubject,
  keyEventEnvelope,
  newId,
  Rpc,
  STREAMS,
  USAGE_SUBJECT,
  type KeyEvent,
  type Scope,
  type ScopeReport,
  type UsageReport,
} from '@keyway/contracts';
import { DEAD_LETTER_HEADERS, ensureStream, jetStreamContext, publishEvent, type JetStreamContext } from '@keyway/messaging';
import { loadConfig, startService } from '@keyway/runtime';
import { serviceModules } from '@keyway/service';
import { serviceDatabaseUrl } from '@keyway/database';
import { eventually, startInfra, type TestInfra } from '@keyway/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Module, type DynamicModule, type INestApplication } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AuditLogEnv, SERVICE, type AuditLogConfig } from '../config';
import { migrations } from '../migrations';
import { USAGE_DURABLE, USAGE_KEYS_DURABLE, UsageIngestService } from './usage-ingest.service';
import { UsageModule } from './usage.module';
import { UsageRepository } from './usage.repository';
import { parseUsageEvent } from './usage-events';

/** The usage module alone on its own database: what it needs, and nothing of the audit trail. */
@Module({})
class UsageOnlyModule {
  static forRoot(config: AuditLogConfig): DynamicModule {
    return {
      module: UsageOnlyModule,
      imports: [...serviceModules({ service: SERVICE, config, entities: [], migrations }), UsageModule.forRoot(config)],
    };
  }
}

type Reply<T> = { response?: T; err?: { code: string; details?: Array<{ field: string; message: string }> } };
type Env = 'live' | 'test';

describe('audit-log usage: per key per minute, from KEYWAY_USAGE', () => {
  let infra: TestInfra;
  let app: INestApplication;
  let nc: NatsConnection;
  let jet: JetStreamContext;
  let ds: DataSource;
  const MIN = 60_000;
  const T0 = Date.parse('2026-11-20T10:00:00.000Z');
  const iso = (ms: number) => new Date(ms).toISOString();

  /** `both`: no mode in the context, as for the operator and the system. */
  const ctx = (tenant: string, environment: Env | 'both' = 'live', scopes = ['keys:read']) => ({
    tenant_id: tenant,
    actor: { type: 'key', id: 'key_caller' },
    request_id: 'req_1',
    scopes,
    ...(environment === 'both' ? {} : { environment }),
  });
  const call = async <T>(subject: string, c: ReturnType<typeof ctx>, id: string, query: Record<string, string> = {}): Promise<Reply<T>> => {
    const m = await nc.request(subject, JSON.stringify({ pattern: subject, data: { ctx: c, params: { id }, query }, id: '1' }), { timeout: 10_000 });
    return m.json<Reply<T>>();
  };
  const usage = (c: ReturnType<typeof ctx>, id: string, query: Record<string, string>) => call<UsageReport>(Rpc.keysUsage, c, id, query);
  const report = (c: ReturnType<typeof ctx>, id: string, query: Record<string, string> = {}) => call<ScopeReport>(Rpc.keysScopeReport, c, id, query);

  let version = 0;
  const created = (tenant: string, keyId: string, environment: Env, scopes: Scope[], at = T0 - 10 * 86_400_000): KeyEvent =>
    keyEventEnvelope({
      id: newId('event'), type: 'created', occurred_at: iso(at), tenant_id: tenant, key_id: keyId, prefix: `kw_${environment}_abcd1234`, version: 1,
      actor: { type: 'operator', id: 'op' }, data: { name: keyId, scopes, environment, expires_at: null, rate_limit: null, metadata: {} },
    });
  const used = (tenant: string, keyId: string, o: { first: number; last?: number; count: number; rateLimited?: number; scopes?: Scope[] | null; gateway?: string }): KeyEvent =>
    keyEventEnvelope({
      id: newId('event'), type: 'used', occurred_at: iso(o.last ?? o.first), tenant_id: tenant, key_id: keyId, prefix: 'kw_live_abcd1234',
      actor: { type: 'system', id: o.gateway ?? 'gw-1' },
      data: { count: o.count, rate_limited: o.rateLimited ?? 0, first_at: iso(o.first), last_at: iso(o.last ?? o.first), scopes_used: o.scopes === undefined ? [] : o.scopes, secret: 'current' },
    });
  const publish = (e: KeyEvent | Record<string, unknown>) => publishEvent(jet.js, e.type === 'used' ? USAGE_SUBJECT : eventSubject(e.type as KeyEvent['type']), e as { id: string });
  /** Waits until both durables have applied and acked everything published so far. */
  const settled = () =>
    eventually(async () => {
      for (const [stream, durable] of [[STREAMS.usage.name, USAGE_DURABLE], [infra.stream, USAGE_KEYS_DURABLE]] as const) {
        const i = await jet.jsm.consumers.info(stream, durable);
        if (i.num_pending > 0 || i.num_ack_pending > 0) return false;
      }
      return true;
    }, 20_000);
  const newKey = async (tenant: string, environment: Env = 'live', scopes: Scope[] = ['keys:read']) => {
    const id = newId('key');
    await publish(created(tenant, id, environment, scopes));
    return id;
  };
  let config: AuditLogConfig;
  const boot = async () => {
    app = await startService({ name: SERVICE, module: UsageOnlyModule.forRoot(config), config });
    ds = app.get(DataSource);
    await eventually(async () => {
      app.get(UsageIngestService).assertConsuming();
      return true;
    }, 20_000);
  };
  const minuteRow = async (keyId: string, minute: number) =>
    (await ds.query<Array<{ requests: string; rate_limited: string }>>('SELECT requests, rate_limited FROM usage_minutes WHERE key_id = $1 AND minute = $2', [keyId, iso(minute)]))[0];

  beforeAll(async () => {
    infra = await startInfra('usage');
    nc = await connect({ servers: infra.natsUrl });
    jet = await jetStreamContext(nc);
    // The streams as their owner, identity, configures them.
    await ensureStream(jet.jsm, { name: infra.stream, subjects: [...STREAMS.keys.subjects], duplicateWindowMs: 10 * 60_000 });
    await ensureStream(jet.jsm, { name: STREAMS.usage.name, subjects: [...STREAMS.usage.subjects], duplicateWindowMs: 10 * 60_000, maxAgeMs: 35 * 86_400_000 });
    await ensureStream(jet.jsm, { name: STREAMS.dlq.name, subjects: [...STREAMS.dlq.subjects] });
    config = loadConfig(AuditLogEnv, { ...infra.env, AUDIT_NAK_DELAY_MS: '100', AUDIT_MAX_DELIVER: '3' });
    await boot();
  });
  afterAll(async () => {
    await nc?.close();
    await app?.close();
    await infra?.stop();
  });

  it('sums three gateways reporting the same minute into one bucket, zero-fills the rest, and rolls minutes up into hours', async () => {
    const key = await newKey('ten_a');
    await publish(used('ten_a', key, { first: T0 + 5_000, last: T0 + 20_000, count: 10, rateLimited: 2, gateway: 'gw-1' }));
    await publish(used('ten_a', key, { first: T0 + 1_000, last: T0 + 59_000, count: 7, gateway: 'gw-2' }));
    await publish(used('ten_a', key, { first: T0 + 30_000, count: 5, rateLimited: 5, gateway: 'gw-3' }));
    await publish(used('ten_a', key, { first: T0 + 2 * MIN + 1, count: 1 }));
    await publish(used('ten_a', key, { first: T0 + 61 * MIN, count: 4, rateLimited: 1 }));
    await settled();

    expect(await minuteRow(key, T0)).toEqual({ requests: '22', rate_limited: '7' });
    const minutes = await usage(ctx('ten_a'), key, { from: iso(T0), to: iso(T0 + 4 * MIN), interval: 'minute' });
    expect(minutes.response?.data).toEqual([
      { start: iso(T0), requests: 22, rate_limited: 7 },
      { start: iso(T0 + MIN), requests: 0, rate_limited: 0 },
      { start: iso(T0 + 2 * MIN), requests: 1, rate_limited: 0 },
      { start: iso(T0 + 3 * MIN), requests: 0, rate_limited: 0 },
    ]);
    // `from` inside a bucket starts at the bucket; `to` is exclusive.
    const hours = await usage(ctx('ten_a'), key, { from: iso(T0 + 17 * MIN), to: iso(T0 + 3 * 60 * MIN), interval: 'hour' });
    expect(hours.response?.data).toEqual([
      { start: iso(T0), requests: 23, rate_limited: 7 },
      { start: iso(T0 + 60 * MIN), requests: 4, rate_limited: 1 },
      { start: iso(T0 + 120 * MIN), requests: 0, rate_limited: 0 },
    ]);
    const days = await usage(ctx('ten_a'), key, { from: iso(T0), to: iso(T0 + 1), interval: 'day' });
    expect(days.response?.data).toEqual([{ start: '2026-11-20T00:00:00.000Z', requests: 27, rate_limited: 8 }]);
  });

  it('sums exactly with two replicas sharing the durable and three gateways reporting one minute', async () => {
    const second = await startService({ name: SERVICE, module: UsageOnlyModule.forRoot(config), config });
    try {
      await eventually(async () => {
        second.get(UsageIngestService).assertConsuming();
        return true;
      }, 20_000);
      const key = await newKey('ten_r');
      const events = Array.from({ length: 300 }, (_, i) => used('ten_r', key, { first: T0 + (i % 60) * 1_000, count: 1 + (i % 7), rateLimited: i % 2, gateway: `gw-${i % 3}` }));
      await Promise.all(events.map((e) => publish(e)));
      await settled();
      const requests = events.reduce((n, e) => n + (e.type === 'used' ? e.data.count : 0), 0);
      expect(await minuteRow(key, T0)).toEqual({ requests: String(requests), rate_limited: '150' });
    } finally {
      await second.close();
    }
  });

  it('counts a redelivered or republished event once: by its id, in the same transaction as its sums', async () => {
    const key = await newKey('ten_a');
    const e = used('ten_a', key, { first: T0, count: 3 });
    await publish(e);
    await settled();
    // Past the stream's duplicate window (no message id): JetStream stores it again, the table does not count it again.
    await jet.js.publish(USAGE_SUBJECT, JSON.stringify(e));
    await settled();
    expect(await minuteRow(key, T0)).toEqual({ requests: '3', rate_limited: '0' });

    // A consumer that committed but died before its ack: the same events applied again, concurrently, change nothing.
    const repo = app.get(UsageRepository);
    // (Tenant ten_direct: written past the stream, so the rebuild test leaves it out.)
    const direct = newId('key');
    const records = [used('ten_direct', direct, { first: T0 + MIN, count: 2 }), used('ten_direct', direct, { first: T0 + MIN, count: 5 })].map(parseUsageEvent);
    await Promise.all([repo.applyUsage(records), repo.applyUsage(records), repo.applyUsage([records[1]!, records[0]!, records[1]!])]);
    expect(await minuteRow(direct, T0 + MIN)).toEqual({ requests: '7', rate_limited: '0' });
  });

  it('answers 404 for a key it does not know, another tenant\'s key, and a key of the other mode; the operator sees both modes', async () => {
    const live = await newKey('ten_owner', 'live');
    const test = await newKey('ten_owner', 'test');
    await settled();
    const q = { from: iso(T0), to: iso(T0 + MIN), interval: 'minute' };
    expect((await usage(ctx('ten_owner', 'live'), live, q)).response?.data).toHaveLength(1);
    expect((await usage(ctx('ten_owner', 'test'), test, q)).response?.data).toHaveLength(1);
    expect((await usage(ctx('ten_owner', 'test'), live, q)).err?.code).toBe('not_found');
    expect((await usage(ctx('ten_owner', 'live'), test, q)).err?.code).toBe('not_found');
    expect((await usage(ctx('ten_other', 'live'), live, q)).err?.code).toBe('not_found');
    expect((await usage(ctx('ten_owner', 'live'), newId('key'), q)).err?.code).toBe('not_found');
    expect((await report(ctx('ten_other', 'live'), live)).err?.code).toBe('not_found');
    expect((await report(ctx('ten_owner', 'test'), live)).err?.code).toBe('not_found');
    expect((await report(ctx('ten_owner', 'both'), test)).response?.granted).toEqual(['keys:read']);
    // A key id another tenant's event claims keeps its first tenant.
    await publish(created('ten_other', live, 'live', ['audit:read']));
    await settled();
    expect((await usage(ctx('ten_other', 'live'), live, q)).err?.code).toBe('not_found');
    expect((await report(ctx('ten_owner', 'live'), live)).response?.granted).toEqual(['keys:read']);
  });

  it('allows at most 1,440 buckets, naming the field of a refused range', async () => {
    const key = await newKey('ten_a');
    await settled();
    const day = await usage(ctx('ten_a'), key, { from: iso(T0), to: iso(T0 + 1_440 * MIN), interval: 'minute' });
    expect(day.response?.data).toHaveLength(1_440);
    const tooMany = await usage(ctx('ten_a'), key, { from: iso(T0), to: iso(T0 + 1_440 * MIN + 1), interval: 'minute' });
    expect(tooMany.err).toMatchObject({ code: 'invalid_request', details: [{ field: 'from' }] });
    expect(tooMany.err?.details?.[0]?.message).toMatch(/1441 minute buckets; at most 1440/);
    expect((await usage(ctx('ten_a'), key, { from: iso(T0), to: iso(T0), interval: 'hour' })).err).toMatchObject({ code: 'invalid_request', details: [{ field: 'from' }] });
    expect((await usage(ctx('ten_a'), key, { from: 'yesterday', interval: 'hour' })).err).toMatchObject({ code: 'invalid_request' });
    expect((await usage(ctx('ten_a'), key, { interval: 'week' })).err).toMatchObject({ code: 'invalid_request' });
    // Without from and to: the last 24 hours, by hour, the current hour included.
    expect((await usage(ctx('ten_a'), key, {})).response?.data).toHaveLength(24);
  });

  it('reports granted, used and unused scopes over the period; a v1 event (scopes unknown) moves complete_since past it and marks nothing', async () => {
    const now = Date.now();
    const key = newId('key');
    await publish(created('ten_s', key, 'live', ['contacts:write', 'keys:read', 'journeys:write', 'audit:read']));
    await publish(used('ten_s', key, { first: now - 5 * MIN, count: 3, scopes: ['contacts:read'] }));
    await publish(used('ten_s', key, { first: now - 4 * MIN, count: 1, scopes: ['keys:read', 'audit:read'] }));
    await publish(used('ten_s', key, { first: now - 31 * 86_400_000, count: 1, scopes: ['journeys:write'] }));
    await settled();

    const tracking = (await ds.query<Array<{ complete_from: Date }>>('SELECT complete_from FROM usage_tracking'))[0]!.complete_from;
    const r30 = (await report(ctx('ten_s'), key, { days: '30' })).response!;
    expect(r30).toEqual({
      granted: ['contacts:write', 'journeys:write', 'keys:read', 'audit:read'],
      used: [
        { scope: 'contacts:read', last_used_at: iso(now - 5 * MIN) },
        { scope: 'keys:read', last_used_at: iso(now - 4 * MIN) },
        { scope: 'audit:read', last_used_at: iso(now - 4 * MIN) },
      ],
      // Reads only, with write granted: narrow contacts:write to contacts:read.
      unused: ['contacts:write', 'journeys:write'],
      complete_since: tracking.toISOString(),
    });
    // 35 days reach the journeys:write call of 31 days ago.
    expect((await report(ctx('ten_s'), key, { days: '35' })).response?.unused).toEqual(['contacts:write']);

    // A v1 event: which scopes it used is unknown. Nothing becomes used or unused by it; the report
    // is complete only from its last use on.
    const v1At = Date.now();
    await publish({
      id: newId('event'), type: 'used', schema_version: 1, occurred_at: iso(v1At), tenant_id: 'ten_s', key_id: key, prefix: 'kw_live_abcd1234',
      actor: { type: 'system', id: 'gw-old' }, data: { count: 2, first_used_at: iso(v1At - 1_000), last_used_at: iso(v1At) },
    });
    await settled();
    const afterV1 = (await report(ctx('ten_s'), key)).response!;
    expect(afterV1.complete_since).toBe(iso(v1At));
    expect(afterV1.used.map((u) => u.scope)).toEqual(['contacts:read', 'keys:read', 'audit:read']);
    expect(afterV1.unused).toEqual(['contacts:write', 'journeys:write']);

    // A scope change follows the key's versions: a redelivered older update does not undo a newer one.
    const update = (v: number, scopes: Scope[]): KeyEvent => keyEventEnvelope({ id: newId('event'), type: 'updated', occurred_at: iso(now), tenant_id: 'ten_s', key_id: key, prefix: 'kw_live_abcd1234', version: v, actor: { type: 'key', id: 'k' }, data: { scopes } });
    await publish(update(3, ['contacts:read']));
    await publish(update(2, ['audit:write']));
    await settled();
    expect((await report(ctx('ten_s'), key)).response).toMatchObject({ granted: ['contacts:read'], used: [{ scope: 'contacts:read' }], unused: [] });
  });

  it('applies every event fixture (each type at each schema version) through both consumers, dead-lettering none', async () => {
    const keyId = newId('key');
    const fixtures = eventFixtures({ tenantId: 'ten_fx', keyId, idPrefix: newId('event') });
    const dlqBefore = (await jet.jsm.streams.info(STREAMS.dlq.name)).state.messages;
    for (const f of fixtures) await jet.js.publish(eventSubject(f.type), JSON.stringify(f.event), { msgID: String(f.event.id) });
    await settled();
    expect((await jet.jsm.streams.info(STREAMS.dlq.name)).state.messages).toBe(dlqBefore);
    // used v1 (3) and v2 (5, 2 of them rate-limited) in one minute.
    expect(await minuteRow(keyId, Date.parse('2026-01-02T03:04:00.000Z'))).toEqual({ requests: '8', rate_limited: '2' });
    const fxCtx = ctx('ten_fx', 'test');
    const r = (await report(fxCtx, keyId, { days: '35' })).response!;
    // The updated fixture's scopes; the v1 event moved complete_since no earlier than its last use.
    expect(r.granted).toEqual(['contacts:read', 'keys:read']);
    expect(Date.parse(r.complete_since!)).toBeGreaterThanOrEqual(Date.parse('2026-01-02T03:04:05.000Z'));
    expect((await usage(ctx('ten_fx', 'live'), keyId, { from: '2026-01-02T03:04:00.000Z', interval: 'minute', to: '2026-01-02T03:05:00.000Z' })).err?.code).toBe('not_found');
  });

  it('dead-letters a message it can never process and goes on with the ones behind it', async () => {
    const key = await newKey('ten_p');
    const poison = await jet.js.publish(USAGE_SUBJECT, JSON.stringify({ id: 'evt_bad', type: 'used', schema_version: 2, data: { count: 'many' } }));
    const tooNew = await jet.js.publish(USAGE_SUBJECT, JSON.stringify({ ...used('ten_p', key, { first: T0, count: 1 }), schema_version: 99 }));
    await publish(used('ten_p', key, { first: T0, count: 4 }));
    await eventually(async () => (await minuteRow(key, T0))?.requests === '4', 20_000);

    const dlqSubject = deadLetterSubject(STREAMS.usage.name, USAGE_DURABLE);
    const letter = await eventually(async () => jet.jsm.streams.getMessage(STREAMS.dlq.name, { last_by_subj: dlqSubject }).catch(() => undefined), 20_000);
    expect(letter.header?.get(DEAD_LETTER_HEADERS.streamSeq)).toBe(String(poison.seq));
    expect(letter.header?.get(DEAD_LETTER_HEADERS.reason)).toBe('invalid');
    expect(letter.json<{ id: string }>().id).toBe('evt_bad');
    // The newer schema version is retried with backoff (AUDIT_MAX_DELIVER times), then dead-lettered too.
    await eventually(async () => (await jet.jsm.streams.getMessage(STREAMS.dlq.name, { last_by_subj: dlqSubject }))?.header?.get(DEAD_LETTER_HEADERS.streamSeq) === String(tooNew.seq), 30_000);
  });

  it('forgets applied event ids once KEYWAY_USAGE can no longer redeliver them', async () => {
    await ds.query(`INSERT INTO usage_applied_events (event_id, applied_at) VALUES ('evt_old', now() - interval '37 days'), ('evt_recent', now() - interval '30 days')`);
    expect(await app.get(UsageIngestService).prune()).toBeGreaterThanOrEqual(1);
    const left = await ds.query<Array<{ event_id: string }>>(`SELECT event_id FROM usage_applied_events WHERE event_id IN ('evt_old', 'evt_recent')`);
    expect(left.map((r) => r.event_id)).toEqual(['evt_recent']);
  });

  it('rebuilds to the same sums from what KEYWAY_USAGE holds: tables emptied, durable deleted', async () => {
    const snapshot = async () => ({
      minutes: await ds.query(`SELECT tenant_id, key_id, minute, requests, rate_limited FROM usage_minutes WHERE tenant_id <> 'ten_direct' ORDER BY 1, 2, 3`),
      scopes: await ds.query(`SELECT tenant_id, key_id, scope, last_used_at FROM usage_scopes ORDER BY 1, 2, 3`),
      gaps: await ds.query(`SELECT tenant_id, key_id, unknown_until FROM usage_scope_gaps ORDER BY 1, 2`),
    });
    await settled();
    const before = await snapshot();
    expect(before.minutes.length).toBeGreaterThan(5);
    // As an operator rebuilds: the service stopped, its usage tables emptied, its durable deleted.
    await app.close();
    const admin = new DataSource({ type: 'postgres', url: serviceDatabaseUrl(config.DATABASE_URL, SERVICE) });
    await admin.initialize();
    await admin.query('TRUNCATE usage_minutes, usage_scopes, usage_scope_gaps, usage_applied_events');
    await admin.destroy();
    await jet.jsm.consumers.delete(STREAMS.usage.name, USAGE_DURABLE);
    await boot();
    await eventually(async () => JSON.stringify(await snapshot()) === JSON.stringify(before), 30_000);
    await settled();
    expect(await snapshot()).toEqual(before);
  });
});
