import { randomBytes } from 'node:crypto';
import { auditHeadSubject, eventSubject, memberEventEnvelope, memberEventSubject, newId, Rpc, tenantEventEnvelope, tenantEventSubject, type AuditEntry, type AuditVerification, type KeyEvent, type Page } from '@keyway/contracts';
import { publishEvent, type JetStreamContext } from '@keyway/messaging';
import { startService } from '@keyway/runtime';
import { eventually, type TestInfra } from '@keyway/testing';
import type { NatsConnection } from '@nats-io/transport-node';
import type { INestApplication } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { chainTestBed, HEADS_SNAPSHOT_SQL, lifecycleEvent, publishKeyEvent, TRAIL_SNAPSHOT_SQL } from '../../test/audit-fixtures';
import { AppModule } from '../app.module';
import { SERVICE, type AuditLogConfig } from '../config';
import { chainContentOfRow } from '../audit/audit-event';
import type { AuditEventEntity } from '../audit/audit-event.entity';
import { AuditEventsRepository } from '../audit/audit-events.repository';
import { ChainKey, GENESIS } from './chain';
import { ChainService } from './chain.service';
import { rebuildTrail } from './rebuild';

type Reply<T> = { response?: T; err?: { code: string; details?: unknown } };
type Ctx = { tenant_id: string; environment?: 'live' | 'test' };

describe('the audit chain: two replicas, the list and verify', () => {
  let infra: TestInfra;
  const apps: INestApplication[] = [];
  let nc: NatsConnection;
  let jet: JetStreamContext;
  let ds: DataSource;
  let chainKey: string;
  let headsStream: string;

  const rpc = async <T>(subject: string, c: Ctx, query: Record<string, unknown> = {}, params: Record<string, string> = {}): Promise<Reply<T>> => {
    const data = { ctx: { ...c, actor: { type: 'key', id: 'key_caller' }, request_id: 'req_1', scopes: ['audit:read'] }, params, query };
    const m = await nc.request(subject, JSON.stringify({ pattern: subject, data, id: '1' }), { timeout: 10_000 });
    return m.json<Reply<T>>();
  };
  const list = (c: Ctx, query: Record<string, unknown> = {}) => rpc<Page<AuditEntry>>(Rpc.auditEventsList, c, query);
  const verify = async (tenant: string, environment?: 'live' | 'test'): Promise<AuditVerification> => {
    const r = await rpc<AuditVerification>(Rpc.auditEventsVerify, { tenant_id: tenant, ...(environment ? { environment } : {}) });
    if (!r.response) throw new Error(`verify answered ${JSON.stringify(r.err)}`);
    return r.response;
  };
  const linked = async (tenant: string): Promise<number> =>
    Number((await ds.query<Array<{ n: string }>>('SELECT count(*) AS n FROM audit_events WHERE tenant_id = $1 AND chain_pos IS NOT NULL', [tenant]))[0]?.n);
  /** Published, linked, and the head published: verify has something to compare with. */
  const settled = async (tenant: string, n: number): Promise<void> => {
    await eventually(async () => (await linked(tenant)) === n, 30_000, 50);
    await eventually(async () => {
      const v = await verify(tenant);
      return v.verified && v.entries === n;
    }, 10_000, 50);
  };
  const publishAll = async (events: KeyEvent[]): Promise<Map<string, number>> => {
    const seqs = new Map<string, number>();
    for (let i = 0; i < events.length; i += 200) {
      const part = events.slice(i, i + 200);
      const acks = await Promise.all(part.map((e) => publishKeyEvent(jet.js, e)));
      part.forEach((e, j) => seqs.set(e.id, acks[j]!.seq));
    }
    return seqs;
  };

  beforeAll(async () => {
    // Two replicas sharing the durable, each with four writers and small batches: rows are stored
    // out of stream order all the time.
    let config: AuditLogConfig;
    // Each tenant's two latest heads kept on the heads stream.
    ({ infra, nc, jet, config } = await chainTestBed('chain', { AUDIT_LINK_IDLE_MS: '50', AUDIT_HEADS_KEPT: '2' }));
    chainKey = config.AUDIT_CHAIN_KEY!;
    headsStream = config.AUDIT_HEADS_STREAM;
    for (let i = 0; i < 2; i++) apps.push(await startService({ name: SERVICE, module: AppModule.forRoot(config), config }));
    ds = apps[0]!.get(DataSource);
  }, 60_000);
  afterAll(async () => {
    await nc?.close();
    for (const app of apps) await app.close();
    await infra?.stop();
  });

  it('links every tenant in stream order, once per event, across replicas, writers and republishes', async () => {
    const tenants = ['ten_c1', 'ten_c2', 'ten_c3', 'ten_c4', 'ten_c5'];
    const events = Array.from({ length: 1_500 }, (_, i) => lifecycleEvent(i, { tenant: tenants[i % tenants.length]!, mode: i % 3 === 0 ? 'test' : 'live' }));
    const firstSeq = await publishAll(events);
    // Republished after the duplicate window (a new message id): a second copy later in the stream.
    for (const e of events.slice(0, 1_500).filter((_, i) => i % 30 === 0)) await jet.js.publish(eventSubject(e.type), JSON.stringify(e));

    for (const t of tenants) await settled(t, 300);
    const rows = await ds.query<Array<{ id: string; tenant_id: string; chain_pos: string; stream_seq: string }>>(
      `SELECT id, tenant_id, chain_pos, stream_seq FROM audit_events WHERE tenant_id = ANY($1) ORDER BY tenant_id, chain_pos`,
      [tenants],
    );
    expect(rows).toHaveLength(1_500);
    for (const t of tenants) {
      const mine = rows.filter((r) => r.tenant_id === t);
      // Positions 1..n, and the order of the stream: each event at its first sequence.
      expect(mine.map((r) => Number(r.chain_pos))).toEqual(mine.map((_, i) => i + 1));
      expect(mine.map((r) => Number(r.stream_seq))).toEqual(mine.map((r) => firstSeq.get(r.id)));
      expect(mine.map((r) => Number(r.stream_seq))).toEqual([...mine.map((r) => Number(r.stream_seq))].sort((a, b) => a - b));
    }
    // The chain is what the key computes over the stream, nothing else.
    const key = new ChainKey(chainKey);
    const head = (await verify('ten_c1')) as { head: string };
    let prev = GENESIS;
    let lastTest = GENESIS;
    const c1 = events.filter((e) => e.tenant_id === 'ten_c1').sort((a, b) => firstSeq.get(a.id)! - firstSeq.get(b.id)!);
    c1.forEach((e, i) => {
      prev = key.link(prev, { ...e, actor_type: e.actor.type, actor_id: e.actor.id, data: e.data }, i + 1);
      if (e.prefix.startsWith('kw_test_')) lastTest = prev;
    });
    expect(prev.toString('hex')).toBe(head.head);
    // A test key is answered with the test entries alone (their count, the last of their links):
    // nothing that moves with the live trail. A live key and the operator get the whole chain.
    const tests = c1.filter((e) => e.prefix.startsWith('kw_test_')).length;
    expect(tests).toBe(100);
    expect(await verify('ten_c1', 'test')).toEqual({ verified: true, entries: tests, head: lastTest.toString('hex') });
    expect(await verify('ten_c1', 'live')).toEqual({ verified: true, entries: 300, head: head.head });
  });

  it("keeps each tenant's latest AUDIT_HEADS_KEPT heads on the heads stream, for good: the older ones dropped, verify unchanged", async () => {
    const subject = auditHeadSubject('ten_kept');
    const publishedAt = async (): Promise<number> => {
      const m = await jet.jsm.streams.getMessage(headsStream, { last_by_subj: subject }).catch(() => undefined);
      return m ? m.json<{ position: number }>().position : 0;
    };
    // Four heads published, one after another.
    for (let wave = 1; wave <= 4; wave++) {
      await publishAll(Array.from({ length: 3 }, (_, i) => lifecycleEvent(100 * wave + i, { tenant: 'ten_kept' })));
      await eventually(async () => (await publishedAt()) === 3 * wave, 15_000, 20);
    }
    const info = await jet.jsm.streams.info(headsStream, { subjects_filter: subject });
    expect(info.config).toMatchObject({ max_msgs_per_subject: 2, max_age: 0 });
    expect(info.state.subjects).toEqual({ [subject]: 2 });
    expect(await verify('ten_kept')).toEqual({ verified: true, entries: 12, head: expect.any(String) });
    // The tail cut back is still caught: the latest head is kept.
    await ds.query('DELETE FROM audit_events WHERE tenant_id = $1 AND chain_pos > 10', ['ten_kept']);
    await ds.query('UPDATE audit_heads SET position = 10 WHERE tenant_id = $1', ['ten_kept']);
    expect(await verify('ten_kept')).toEqual({ verified: false, first_bad: { id: null, reason: expect.stringMatching(/published head is at position 12 but the trail ends at 10/) } });
  });

  it('lists the tenant trail newest first, filtered, in the caller mode only', async () => {
    const t = 'ten_list';
    const key = 'key_listed';
    const events = Array.from({ length: 24 }, (_, i) =>
      lifecycleEvent(i, { tenant: t, key: i % 2 === 0 ? key : 'key_other', mode: i % 4 === 0 ? 'test' : 'live', actor: i % 3 === 0 ? { type: 'member', id: 'usr_m' } : { type: 'key', id: 'key_root' } }),
    );
    await publishAll(events);
    await settled(t, 24);

    const all = (await list({ tenant_id: t }, { pageSize: '50' })).response;
    expect(all).toMatchObject({ total: 24, hasMore: false, page: 1, pageSize: 50 });
    expect(all?.data.map((e) => e.id)).toEqual([...events].reverse().map((e) => e.id));
    const first = all?.data[23];
    expect(first).toEqual({
      id: events[0]!.id,
      type: 'created',
      occurred_at: events[0]!.occurred_at,
      actor: { type: 'member', id: 'usr_m' },
      key_id: key,
      prefix: 'kw_test_abcd1234',
      environment: 'test',
      changes: events[0]!.data,
    });
    expect(JSON.stringify(all)).not.toMatch(/hash|seal|secret|chain_pos/);

    const test = (await list({ tenant_id: t, environment: 'test' }, { pageSize: '50' })).response;
    expect(test?.total).toBe(6);
    expect(test?.data.every((e) => e.environment === 'test')).toBe(true);
    const live = (await list({ tenant_id: t, environment: 'live' }, { pageSize: '50' })).response;
    expect(live?.total).toBe(18);
    expect(live?.data.every((e) => e.environment === 'live')).toBe(true);

    const p2 = (await list({ tenant_id: t, environment: 'live' }, { page: '2', pageSize: '5' })).response;
    expect(p2?.data.map((e) => e.id)).toEqual(live?.data.slice(5, 10).map((e) => e.id));
    expect(p2).toMatchObject({ total: 18, hasMore: true });

    // Walking with after: every live entry once, in order, whatever is linked meanwhile.
    const walked: string[] = [];
    let cursor: string | null | undefined;
    do {
      const page = (await list({ tenant_id: t, environment: 'live' }, { pageSize: '4', ...(cursor ? { after: cursor } : {}) })).response;
      walked.push(...(page?.data.map((e) => e.id) ?? []));
      cursor = page?.next_cursor;
    } while (cursor);
    expect(walked).toEqual(live?.data.map((e) => e.id));
    const cursorOfLive = (await list({ tenant_id: t, environment: 'live' }, { pageSize: '4' })).response?.next_cursor;
    expect(cursorOfLive).toEqual(expect.any(String));
    // A cursor continues only the list it came from: not another mode's, not other filters'.
    expect((await list({ tenant_id: t, environment: 'test' }, { after: cursorOfLive })).err?.code).toBe('invalid_request');
    expect((await list({ tenant_id: t, environment: 'live' }, { after: cursorOfLive, type: 'created' })).err?.code).toBe('invalid_request');
    expect((await list({ tenant_id: t }, { after: cursorOfLive, page: '2' })).err?.code).toBe('invalid_request');

    const byKey = (await list({ tenant_id: t }, { key_id: key, pageSize: '50' })).response;
    expect(byKey?.data.map((e) => e.id)).toEqual(events.filter((_, i) => i % 2 === 0).reverse().map((e) => e.id));
    expect(byKey?.total).toBe(12);
    const byType = (await list({ tenant_id: t }, { type: 'revoked' })).response;
    expect(byType?.data.map((e) => e.id)).toEqual([events[22]!.id, events[14]!.id, events[6]!.id]);
    const byActor = (await list({ tenant_id: t, environment: 'test' }, { actor_type: 'member', actor_id: 'usr_m' })).response;
    expect(byActor?.data.map((e) => e.id)).toEqual(events.filter((_, i) => i % 3 === 0 && i % 4 === 0).reverse().map((e) => e.id));
    const window = (await list({ tenant_id: t }, { from: events[3]!.occurred_at, to: events[6]!.occurred_at })).response;
    expect(window?.data.map((e) => e.id)).toEqual([events[5]!.id, events[4]!.id, events[3]!.id]);

    expect((await list({ tenant_id: 'ten_someone_else' })).response).toMatchObject({ data: [], total: 0, hasMore: false });
    for (const bad of [{ pageSize: '51' }, { type: 'used_up' }, { actor_type: 'robot' }, { from: 'yesterday' }, { colour: 'red' }, { key_id: '' }]) {
      expect((await list({ tenant_id: t }, bad)).err?.code).toBe('invalid_request');
    }
  });

  it('member events join the tenant trail: live, actor member, filtered by type and actor, never a password, chain verified', async () => {
    const t = 'ten_members';
    const member = 'mem_ada';
    const at = (s: number): string => new Date(Date.UTC(2025, 1, 1, 0, 0, s)).toISOString();
    const created = memberEventEnvelope({
      id: newId('event'), type: 'created', occurred_at: at(1), tenant_id: t, member_id: member,
      actor: { type: 'member', id: 'mem_admin' }, data: { name: 'Ada', email: 'ada@example.com', role: 'developer' },
    });
    const signedIn = memberEventEnvelope({
      id: newId('event'), type: 'signed_in', occurred_at: at(2), tenant_id: t, member_id: member,
      actor: { type: 'member', id: member }, data: { client_address: '203.0.113.7' },
    });
    // A faulty writer's extra fields never reach the trail: only what the member contract names.
    const leaky = { ...signedIn, id: newId('event'), occurred_at: at(3), data: { ...signedIn.data, password: 'hunter2', session_id: 'ses_x' }, password_hash: 'h' };
    await publishEvent(jet.js, memberEventSubject('created'), created);
    await publishEvent(jet.js, memberEventSubject('signed_in'), signedIn);
    await publishEvent(jet.js, memberEventSubject('signed_in'), leaky);
    await publishKeyEvent(jet.js, lifecycleEvent(0, { tenant: t, at: at(4) }));
    await settled(t, 4);

    const all = (await list({ tenant_id: t, environment: 'live' })).response;
    expect(all?.total).toBe(4);
    expect(all?.data.slice(1).map((e) => e.id)).toEqual([leaky.id, signedIn.id, created.id]);
    expect(all?.data[3]).toEqual({
      id: created.id,
      type: 'member.created',
      occurred_at: created.occurred_at,
      actor: { type: 'member', id: 'mem_admin' },
      key_id: null,
      prefix: null,
      environment: 'live',
      changes: { member_id: member, name: 'Ada', email: 'ada@example.com', role: 'developer' },
    });
    expect(all?.data[2]).toMatchObject({ type: 'member.signed_in', actor: { type: 'member', id: member }, changes: { member_id: member, client_address: '203.0.113.7' } });
    expect(JSON.stringify(all)).not.toMatch(/hunter2|ses_x|password|session/);

    const signIns = (await list({ tenant_id: t, environment: 'live' }, { type: 'member.signed_in' })).response;
    expect(signIns?.data.map((e) => e.id)).toEqual([leaky.id, signedIn.id]);
    const byMembers = (await list({ tenant_id: t }, { actor_type: 'member' })).response;
    expect(byMembers?.data.map((e) => e.id)).toEqual([leaky.id, signedIn.id, created.id]);
    const byAda = (await list({ tenant_id: t }, { actor_type: 'member', actor_id: member })).response;
    expect(byAda?.data.map((e) => e.id)).toEqual([leaky.id, signedIn.id]);
    // A test key sees only test entries: no member's.
    expect((await list({ tenant_id: t, environment: 'test' })).response?.total).toBe(0);
    expect(await verify(t)).toMatchObject({ verified: true, entries: 4 });
  });

  it("an operator's tenant events and revokes join the trail: tenant.updated without a key, actor operator, filtered, chained", async () => {
    const t = 'ten_operated';
    const at = (s: number): string => new Date(Date.UTC(2025, 2, 1, 0, 0, s)).toISOString();
    const operator = { type: 'operator' as const, id: 'operator' };
    const renamed = tenantEventEnvelope({ id: newId('event'), type: 'updated', occurred_at: at(1), tenant_id: t, actor: operator, data: { name: 'Acme' } });
    // A faulty writer's extra fields never reach the trail: only what the tenant contract names.
    const leaky = { ...renamed, id: newId('event'), occurred_at: at(2), data: { name: 'Acme 2', admin_token: 'tok_secret' }, admin_token: 'tok_secret' };
    const revoked = { ...lifecycleEvent(6, { tenant: t, at: at(3), actor: operator }) };
    expect(revoked.type).toBe('revoked');
    await publishKeyEvent(jet.js, lifecycleEvent(0, { tenant: t, at: at(0) }));
    await publishEvent(jet.js, tenantEventSubject('updated'), renamed);
    await publishEvent(jet.js, tenantEventSubject('updated'), leaky);
    await publishKeyEvent(jet.js, revoked);
    await settled(t, 4);

    const all = (await list({ tenant_id: t })).response;
    expect(all?.data.map((e) => e.type)).toEqual(['revoked', 'tenant.updated', 'tenant.updated', 'created']);
    expect(all?.data[2]).toEqual({
      id: renamed.id,
      type: 'tenant.updated',
      occurred_at: renamed.occurred_at,
      actor: operator,
      key_id: null,
      prefix: null,
      environment: 'live',
      changes: { name: 'Acme' },
    });
    expect(all?.data[1]?.changes).toEqual({ name: 'Acme 2' });
    expect(JSON.stringify(all)).not.toMatch(/tok_secret|admin_token/);
    const byType = (await list({ tenant_id: t, environment: 'live' }, { type: 'tenant.updated' })).response;
    expect(byType?.data.map((e) => e.id)).toEqual([leaky.id, renamed.id]);
    const byOperator = (await list({ tenant_id: t }, { actor_type: 'operator' })).response;
    expect(byOperator?.data.map((e) => e.id)).toEqual([revoked.id, leaky.id, renamed.id]);
    const inTime = (await list({ tenant_id: t, environment: 'live' }, { from: at(1), to: at(3) })).response;
    expect(inTime?.data.map((e) => e.id)).toEqual([leaky.id, renamed.id]);
    // Not a test key's: tenant entries are live, like members'.
    expect((await list({ tenant_id: t, environment: 'test' }, { type: 'tenant.updated' })).response?.total).toBe(0);
    expect(await verify(t)).toMatchObject({ verified: true, entries: 4 });
  });

  it('from/to deep in a large trail: the range through its own index, newest first, paged by cursor, unlinked rows left out', async () => {
    const t = 'ten_range';
    // Straight into Postgres as the linker leaves rows, below its cursor (negative sequences): one
    // entry a minute, more than RECENT after the range, so the range is read through its index.
    await ds.query(
      `INSERT INTO audit_events (id, tenant_id, key_id, type, schema_version, occurred_at, prefix, actor_type, actor_id, data, stream_seq, chain_pos, hash, linked_at)
       SELECT 'evt_range' || g, $1, 'key_r', 'updated', 1, timestamptz '2024-01-01' + g * interval '1 minute',
              CASE WHEN g % 2 = 0 THEN 'kw_test_range000' ELSE 'kw_live_range000' END, 'key', 'key_root', '{}'::jsonb, g - 100000, g, sha256(g::text::bytea), now()
       FROM generate_series(1, 3000) AS g`,
      [t],
    );
    const range = { from: '2024-01-01T10:00:00Z', to: '2024-01-01T12:00:00Z' };
    const ids = (from: number, to: number, keep: (g: number) => boolean = () => true): string[] => {
      const out: string[] = [];
      for (let g = from; g >= to; g--) if (keep(g)) out.push(`evt_range${g}`);
      return out;
    };
    const walk = async (c: Ctx, query: Record<string, unknown>): Promise<string[]> => {
      const seen: string[] = [];
      let after: string | undefined;
      for (;;) {
        const page = (await list(c, { ...query, pageSize: '50', ...(after ? { after } : {}) })).response!;
        seen.push(...page.data.map((e) => e.id));
        if (!page.next_cursor) return seen;
        after = page.next_cursor;
      }
    };
    const first = (await list({ tenant_id: t }, { ...range, pageSize: '50' })).response;
    expect(first).toMatchObject({ total: 120, hasMore: true });
    expect(first?.data.map((e) => e.id)).toEqual(ids(719, 670));
    expect(await walk({ tenant_id: t }, range)).toEqual(ids(719, 600));
    expect(await walk({ tenant_id: t, environment: 'live' }, range)).toEqual(ids(719, 600, (g) => g % 2 === 1));
    expect((await list({ tenant_id: t, environment: 'test' }, { ...range, page: '2', pageSize: '10' })).response?.data.map((e) => e.id)).toEqual(ids(698, 680, (g) => g % 2 === 0));

    // Unlinked rows in the range (written outside the service) are never shown; more of them than
    // the candidates' slack still gives the exact page.
    await ds.query(`UPDATE audit_events SET chain_pos = NULL WHERE tenant_id = $1 AND id = 'evt_range715'`, [t]);
    expect(await walk({ tenant_id: t }, range)).toEqual(ids(719, 600, (g) => g !== 715));
    await ds.query(`UPDATE audit_events SET chain_pos = NULL WHERE tenant_id = $1 AND stream_seq BETWEEN $2 AND $3`, [t, 650 - 100000, 719 - 100000]);
    const rest = (await list({ tenant_id: t }, { ...range, pageSize: '50' })).response;
    expect(rest?.data.map((e) => e.id)).toEqual(ids(649, 600));
    expect(rest?.hasMore).toBe(false);
  });

  it('a replica that dies after its commit and before its ack: the redelivery changes nothing', async () => {
    const t = 'ten_noack';
    const events = Array.from({ length: 40 }, (_, i) => lifecycleEvent(i, { tenant: t }));
    const victim = events[17]!;
    // Every replica's writer commits the batch holding the victim (linked as it is stored, or
    // sealed for the linker), then "dies" before the ack.
    let died = 0;
    let deliveries = 0;
    for (const app of apps) {
      const chain = app.get(ChainService);
      const real = chain.store.bind(chain);
      jest.spyOn(chain, 'store').mockImplementation(async (records, settledSeqs) => {
        const stored = await real(records, settledSeqs);
        if (records.some((r) => r.event.id === victim.id)) deliveries += 1;
        if (died === 0 && records.some((r) => r.event.id === victim.id)) {
          died += 1;
          throw new Error('the process died after its commit');
        }
        return stored;
      });
    }
    const seqs = await publishAll(events);
    await eventually(async () => died === 1);
    const committed = await ds.query<AuditEventEntity[]>('SELECT id, stream_seq, seal, data, occurred_at FROM audit_events WHERE id = $1', [victim.id]);
    const linkedAtCommit = await ds.query<Array<{ chain_pos: string | null }>>('SELECT chain_pos FROM audit_events WHERE id = $1', [victim.id]);
    expect(committed).toHaveLength(1);

    await settled(t, 40);
    // Written, then written again (a no-op) once its redelivery comes: the chain did not wait for
    // it (the rows ran on without a gap).
    await eventually(async () => deliveries >= 2, 10_000, 50);
    const after = await ds.query<AuditEventEntity[]>('SELECT id, stream_seq, seal, data, occurred_at FROM audit_events WHERE id = $1', [victim.id]);
    expect(after).toEqual(committed);
    // Linked as it was stored: the redelivery moved nothing of the chain either.
    if (linkedAtCommit[0]?.chain_pos) expect((await ds.query('SELECT chain_pos FROM audit_events WHERE id = $1', [victim.id]))[0]).toEqual(linkedAtCommit[0]);
    const chain = await ds.query<Array<{ id: string; chain_pos: string }>>('SELECT id, chain_pos FROM audit_events WHERE tenant_id = $1 ORDER BY chain_pos', [t]);
    expect(chain.map((r) => r.id)).toEqual([...events].sort((a, b) => seqs.get(a.id)! - seqs.get(b.id)!).map((e) => e.id));
    jest.restoreAllMocks();
  });

  describe('tampering straight in Postgres is detected', () => {
    const tenants = ['ten_edit', 'ten_delete', 'ten_insert', 'ten_rechain', 'ten_tail', 'ten_outside'];
    const rowAt = async (tenant: string, pos: number) =>
      (await ds.query<Array<{ id: string; data: unknown }>>('SELECT id, data FROM audit_events WHERE tenant_id = $1 AND chain_pos = $2', [tenant, pos]))[0]!;

    beforeAll(async () => {
      await publishAll(tenants.flatMap((t) => Array.from({ length: 10 }, (_, i) => lifecycleEvent(i, { tenant: t }))));
      for (const t of tenants) await settled(t, 10);
    });

    it('a row edited', async () => {
      const victim = await rowAt('ten_edit', 4);
      await ds.query(`UPDATE audit_events SET data = '{"reason":"nothing to see"}' WHERE id = $1`, [victim.id]);
      expect(await verify('ten_edit')).toEqual({ verified: false, first_bad: { id: victim.id, reason: expect.stringMatching(/position 4 does not match/) } });
    });

    it('a row deleted', async () => {
      const victim = await rowAt('ten_delete', 5);
      const next = await rowAt('ten_delete', 6);
      await ds.query('DELETE FROM audit_events WHERE id = $1', [victim.id]);
      expect(await verify('ten_delete')).toEqual({ verified: false, first_bad: { id: next.id, reason: expect.stringMatching(/position 6 where 5 was expected/) } });
    });

    it('a row inserted into the chain', async () => {
      // Room at position 3, then a made-up entry with a made-up link there.
      await ds.query('UPDATE audit_events SET chain_pos = -chain_pos WHERE tenant_id = $1 AND chain_pos >= 3', ['ten_insert']);
      await ds.query('UPDATE audit_events SET chain_pos = -chain_pos + 1 WHERE tenant_id = $1 AND chain_pos < 0', ['ten_insert']);
      const forged = lifecycleEvent(6, { tenant: 'ten_insert' });
      await ds.query(
        `INSERT INTO audit_events (id, tenant_id, key_id, type, schema_version, occurred_at, prefix, actor_type, actor_id, data, stream_seq, chain_pos, hash)
         VALUES ($1, 'ten_insert', $2, $3, 1, $4, $5, 'key', 'key_root', $6, 1, 3, $7)`,
        [forged.id, forged.key_id, forged.type, forged.occurred_at, forged.prefix, JSON.stringify(forged.data), randomBytes(32)],
      );
      expect(await verify('ten_insert')).toEqual({ verified: false, first_bad: { id: forged.id, reason: expect.stringMatching(/position 3 does not match/) } });
    });

    it('a row edited and every later link recomputed with a guessed key', async () => {
      const guessed = new ChainKey('guessed-guessed-guessed-guessed-guessed');
      await ds.query(`UPDATE audit_events SET actor_id = 'key_innocent' WHERE tenant_id = $1 AND chain_pos = 7`, ['ten_rechain']);
      const rows = await ds.query<AuditEventEntity[]>('SELECT * FROM audit_events WHERE tenant_id = $1 ORDER BY chain_pos', ['ten_rechain']);
      let prev = rows[5]!.hash!;
      for (const r of rows.slice(6)) {
        prev = guessed.link(prev, chainContentOfRow(r), Number(r.chain_pos));
        await ds.query('UPDATE audit_events SET hash = $2 WHERE id = $1', [r.id, prev]);
      }
      await ds.query('UPDATE audit_heads SET hash = $2 WHERE tenant_id = $1', ['ten_rechain', prev]);
      expect(await verify('ten_rechain')).toEqual({ verified: false, first_bad: { id: rows[6]!.id, reason: expect.stringMatching(/position 7 does not match/) } });
    });

    it('a row edited between its insert and its link is never chained as edited: verify names it', async () => {
      const t = 'ten_between';
      const events = Array.from({ length: 6 }, (_, i) => lifecycleEvent(i, { tenant: t }));
      const victim = events[3]!;
      // Whichever replica gets the victim stores its batch sealed and unlinked (as a batch that
      // does not continue the chain is), and the row is edited in the table right after that
      // commit, before the linker (which remembers what it sealed) gets to it.
      for (const app of apps) {
        const chain = app.get(ChainService);
        const repo = app.get(AuditEventsRepository);
        const real = chain.store.bind(chain);
        jest.spyOn(chain, 'store').mockImplementation(async (records, settledSeqs) => {
          if (!records.some((r) => r.event.id === victim.id)) return real(records, settledSeqs);
          const sealed = await repo.insert(records);
          await ds.query(`UPDATE audit_events SET data = '{"name":"forged"}' WHERE id = $1`, [victim.id]);
          chain.stored(Math.max(...records.map((r) => r.streamSeq)), sealed);
          return { linked: 0, unlinked: sealed.length };
        });
      }
      try {
        await publishAll(events);
        // All six stored and the linker past them (linked, or the victim refused).
        const passed = async (): Promise<boolean> => {
          const [r] = await ds.query<Array<{ n: number; top: string }>>(
            'SELECT count(*)::int AS n, max(stream_seq) AS top FROM audit_events WHERE tenant_id = $1 AND stream_seq <= (SELECT stream_seq FROM audit_linker)',
            [t],
          );
          return r?.n === 6;
        };
        await eventually(passed, 30_000, 50);
        expect(await verify(t)).toEqual({ verified: false, first_bad: { id: victim.id, reason: expect.any(String) } });
      } finally {
        jest.restoreAllMocks();
      }
    });

    it('the tail deleted', async () => {
      await ds.query('DELETE FROM audit_events WHERE tenant_id = $1 AND chain_pos > 7', ['ten_tail']);
      await ds.query('UPDATE audit_heads SET position = 7 WHERE tenant_id = $1', ['ten_tail']);
      expect(await verify('ten_tail')).toEqual({ verified: false, first_bad: { id: null, reason: expect.stringMatching(/published head is at position 10 but the trail ends at 7/) } });
    });

    it('a row written outside the chain is never linked, and is named', async () => {
      const forged = lifecycleEvent(3, { tenant: 'ten_outside' });
      await ds.query(
        `INSERT INTO audit_events (id, tenant_id, key_id, type, schema_version, occurred_at, prefix, actor_type, actor_id, data, stream_seq)
         VALUES ($1, 'ten_outside', $2, $3, 1, $4, $5, 'key', 'key_root', $6, 2)`,
        [forged.id, forged.key_id, forged.type, forged.occurred_at, forged.prefix, JSON.stringify(forged.data)],
      );
      // More events for the tenant: the linker runs past the forged row and leaves it out.
      await publishAll([lifecycleEvent(10, { tenant: 'ten_outside' })]);
      await eventually(async () => (await linked('ten_outside')) === 11);
      expect((await ds.query<Array<{ chain_pos: null }>>('SELECT chain_pos FROM audit_events WHERE id = $1', [forged.id]))[0]?.chain_pos).toBeNull();
      expect(await verify('ten_outside')).toEqual({ verified: false, first_bad: { id: forged.id, reason: expect.stringMatching(/outside the chain/) } });
      // The forged entry is live: a test key is told that the chain breaks, not which live entry.
      expect((await verify('ten_outside', 'test')) as unknown).toMatchObject({ verified: false, first_bad: { id: null } });
      expect(await verify('ten_c1')).toMatchObject({ verified: true, entries: 300 });
    });
  });
});

describe('rebuilding the trail from the stream', () => {
  let infra: TestInfra;
  let nc: NatsConnection;
  let jet: JetStreamContext;
  let config: AuditLogConfig;

  beforeAll(async () => {
    ({ infra, nc, jet, config } = await chainTestBed('rebuild'));
  });
  afterAll(async () => {
    await nc?.close();
    await infra?.stop();
  });

  it('comes out identical: the same entries, links and heads, and every published head matches', async () => {
    // The original: two replicas, four writers each, small batches; republishes, a used event
    // from before the usage stream, and a message that never parses, all on the stream.
    const apps: INestApplication[] = [];
    for (let i = 0; i < 2; i++) apps.push(await startService({ name: SERVICE, module: AppModule.forRoot(config), config }));
    const ds = apps[0]!.get(DataSource);
    const tenants = Array.from({ length: 20 }, (_, i) => `ten_rb${i}`);
    const events = Array.from({ length: 600 }, (_, i) => lifecycleEvent(i, { tenant: tenants[(i * 7) % tenants.length]!, mode: i % 4 === 0 ? 'test' : 'live' }));
    for (let i = 0; i < events.length; i += 100) await Promise.all(events.slice(i, i + 100).map((e) => publishKeyEvent(jet.js, e)));
    for (const e of events.filter((_, i) => i % 50 === 0)) await jet.js.publish(eventSubject(e.type), JSON.stringify(e));
    await jet.js.publish(eventSubject('created'), 'not json');
    const used = { ...lifecycleEvent(0, { tenant: 'ten_rb0' }), type: 'used', data: { count: 1, rate_limited: 0, first_at: events[0]!.occurred_at, last_at: events[0]!.occurred_at, scopes_used: null, secret: 'current' } };
    await jet.js.publish(eventSubject('used'), JSON.stringify(used));

    await eventually(async () => Number((await ds.query<Array<{ n: string }>>('SELECT count(*) AS n FROM audit_events WHERE chain_pos IS NOT NULL'))[0]?.n) === 600, 30_000, 50);
    const chain = apps[0]!.get(ChainService);
    for (const t of tenants) await eventually(async () => (await chain.verify(t)).verification.verified, 10_000, 50);
    const published = await Promise.all(tenants.map(async (t) => (await chain.verify(t)).verification));
    const trail = await ds.query<unknown[]>(TRAIL_SNAPSHOT_SQL);
    const heads = await ds.query<unknown[]>(HEADS_SNAPSHOT_SQL);
    for (const app of apps) await app.close();

    const target = { ...config, DATABASE_URL: `${infra.databaseUrl}_rb` };
    const result = await rebuildTrail(target, { timeoutMs: 60_000 });
    expect(result).toMatchObject({ tenants: 20, entries: 600, mismatches: [] });

    const rebuilt = await startService({ name: SERVICE, module: AppModule.forRoot(target), config: target });
    try {
      const rds = rebuilt.get(DataSource);
      expect(await rds.query(TRAIL_SNAPSHOT_SQL)).toEqual(trail);
      expect(await rds.query(HEADS_SNAPSHOT_SQL)).toEqual(heads);
      const rchain = rebuilt.get(ChainService);
      expect(await Promise.all(tenants.map(async (t) => (await rchain.verify(t)).verification))).toEqual(published);
      // The rebuild's consumer is gone; the service's own durable was never touched.
      await expect(jet.jsm.consumers.info(infra.stream, result.durable)).rejects.toThrow(/not found/);
    } finally {
      await rebuilt.close();
    }
    // A database that holds a trail is never rebuilt into.
    await expect(rebuildTrail(target)).rejects.toThrow(/is not empty/);
  });
});
