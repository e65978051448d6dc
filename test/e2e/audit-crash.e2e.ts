import { randomBytes } from 'node:crypto';
import { EVENT_SUBJECTS, Rpc, type AuditVerification, type KeyEvent } from '@keyway/contracts';
import { serviceDatabaseUrl } from '@keyway/database';
import { ensureStream, jetStreamContext, type JetStreamContext } from '@keyway/messaging';
import { eventually, ServiceProcess, startInfra, type TestInfra } from '@keyway/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Client } from 'pg';
import { lifecycleEvent, publishKeyEvent } from '../../apps/audit-log/test/audit-fixtures';

/**
 * The audit trail under crashes, against the built service as a child process: kill -9 at random
 * points while events flow, and NATS (file storage) killed and restarted in the middle. Afterwards
 * every event is in the trail exactly once, linked in stream order per tenant, and every chain
 * verifies against its published head.
 *
 * AUDIT_CRASH_EVENTS sets the count: 3,000 in `npm test` (about 20 s here); the 10,000 on
 * demand (`AUDIT_CRASH_EVENTS=10000 npx jest test/e2e/audit-crash.e2e.ts`, about 50 s here).
 */
const TOTAL = Number(process.env.AUDIT_CRASH_EVENTS ?? 3_000);
const TENANTS = Array.from({ length: 40 }, (_, i) => `ten_crash${i}`);

describe('the audit trail survives kill -9 and a NATS restart', () => {
  let infra: TestInfra;
  let nc: NatsConnection;
  let jet: JetStreamContext;
  let pg: Client;
  let env: Record<string, string>;
  const services: ServiceProcess[] = [];

  const start = async (): Promise<ServiceProcess> => {
    const s = new ServiceProcess('audit-log', env);
    services.push(s);
    await s.start();
    return s;
  };
  const count = async (sql: string, params: unknown[] = []): Promise<number> => Number((await pg.query<{ n: string }>(sql, params)).rows[0]?.n);
  /** Publishes until JetStream acknowledges (NATS may be down for a moment); returns the sequence. */
  const publish = (e: KeyEvent): Promise<number> => eventually(async () => (await publishKeyEvent(jet.js, e)).seq, 30_000, 100);
  const publishAll = async (events: KeyEvent[], firstSeq: Map<string, number>): Promise<void> => {
    for (let i = 0; i < events.length; i += 250) {
      const part = events.slice(i, i + 250);
      const seqs = await Promise.all(part.map(publish));
      part.forEach((e, j) => firstSeq.set(e.id, Math.min(firstSeq.get(e.id) ?? Infinity, seqs[j]!)));
      await new Promise((r) => setTimeout(r, 25));
    }
  };

  /** Exactly these events, once each, linked in stream order, and every chain verified. */
  async function expectTrail(events: KeyEvent[], firstSeq: Map<string, number>): Promise<void> {
    const tenants = [...new Set(events.map((e) => e.tenant_id))];
    await eventually(async () => (await count('SELECT count(*) AS n FROM audit_events WHERE tenant_id = ANY($1) AND chain_pos IS NOT NULL', [tenants])) === events.length, 90_000, 200);
    expect(await count('SELECT count(*) AS n FROM audit_events WHERE tenant_id = ANY($1)', [tenants])).toBe(events.length);
    const rows = (
      await pg.query<{ id: string; tenant_id: string; chain_pos: string; stream_seq: string }>(
        'SELECT id, tenant_id, chain_pos, stream_seq FROM audit_events WHERE tenant_id = ANY($1) ORDER BY tenant_id, chain_pos',
        [tenants],
      )
    ).rows;
    expect(new Set(rows.map((r) => r.id)).size).toBe(events.length);
    const byTenant = new Map<string, typeof rows>();
    for (const r of rows) byTenant.set(r.tenant_id, [...(byTenant.get(r.tenant_id) ?? []), r]);
    for (const [, mine] of byTenant) {
      expect(mine.map((r) => Number(r.chain_pos))).toEqual(mine.map((_, i) => i + 1));
      expect(mine.map((r) => Number(r.stream_seq))).toEqual(mine.map((r) => firstSeq.get(r.id)));
      expect(mine.every((r, i) => i === 0 || Number(r.stream_seq) > Number(mine[i - 1]!.stream_seq))).toBe(true);
    }
    for (const t of tenants) {
      const expected = byTenant.get(t)?.length ?? 0;
      await eventually(async () => {
        const data = { ctx: { tenant_id: t, actor: { type: 'operator', id: 'op' }, request_id: 'r', scopes: ['audit:read'] }, params: {}, query: {} };
        const m = await nc.request(Rpc.auditEventsVerify, JSON.stringify({ pattern: Rpc.auditEventsVerify, data, id: '1' }), { timeout: 10_000 });
        const v = m.json<{ response?: AuditVerification }>().response;
        return v?.verified === true && v.entries === expected;
      }, 20_000, 100);
    }
  }

  beforeAll(async () => {
    infra = await startInfra('auditcrash');
    nc = await connect({ servers: infra.natsUrl, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    jet = await jetStreamContext(nc);
    await ensureStream(jet.jsm, { name: infra.stream, subjects: [EVENT_SUBJECTS], duplicateWindowMs: 10 * 60_000 });
    // A short ack wait: a killed replica's un-acked batch comes back in 2 s rather than 30.
    env = { ...infra.env, LOG_LEVEL: 'warn', AUDIT_CHAIN_KEY: randomBytes(32).toString('hex'), AUDIT_ACK_WAIT_MS: '2000', AUDIT_HEAD_PUBLISH_MS: '50', AUDIT_NAK_DELAY_MS: '100' };
    await start(); // creates the database and the consumer
    pg = new Client({ connectionString: serviceDatabaseUrl(infra.databaseUrl, 'audit-log') });
    await pg.connect();
  }, 60_000);
  afterAll(async () => {
    await pg?.end();
    for (const s of services) await s.kill();
    await nc?.close();
    await infra?.stop();
  });

  it(`${TOTAL.toLocaleString('en')} events with the service killed (kill -9) at random points: each once, every chain valid`, async () => {
    const events = Array.from({ length: TOTAL }, (_, i) => lifecycleEvent(i, { tenant: TENANTS[i % TENANTS.length]!, mode: i % 5 === 0 ? 'test' : 'live' }));
    const firstSeq = new Map<string, number>();
    let publishing = true;
    const publisher = publishAll(events, firstSeq).finally(() => (publishing = false));
    let kills = 0;
    while (publishing || kills < 3) {
      await new Promise((r) => setTimeout(r, 150 + Math.random() * 600));
      await services[services.length - 1]!.kill('SIGKILL');
      kills += 1;
      await start();
    }
    await publisher;
    await expectTrail(events, firstSeq);
    const info = await jet.jsm.consumers.info(infra.stream, 'audit-log');
    // Batches that were written (or half written) when the process died came back: no duplicates anyway.
    expect(info.num_redelivered + kills).toBeGreaterThan(0);
  });

  it('NATS killed and restarted in the middle: none lost, none duplicated', async () => {
    const nats = infra.nats;
    if (!nats) throw new Error('this test needs a private nats-server');
    const events = Array.from({ length: 3_000 }, (_, i) => lifecycleEvent(i, { tenant: `ten_natsrestart${i % 7}` }));
    const firstSeq = new Map<string, number>();
    await publishAll(events.slice(0, 1_500), firstSeq);
    await nats.restart(); // SIGKILL: JetStream comes back from its files
    await publishAll(events.slice(1_500), firstSeq);
    await expectTrail(events, firstSeq);
  });
});
