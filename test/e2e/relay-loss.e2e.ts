import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rpc, type AuditVerification, type CreatedTenant, type IssuedKey } from '@keyway/contracts';
import { serviceDatabaseUrl } from '@keyway/database';
import { jetStreamContext, type JetStreamContext } from '@keyway/messaging';
import { eventually, freePort, ServiceProcess, startInfra, type TestInfra } from '@keyway/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Client } from 'pg';
import { NatsNode, singleNodeConfig } from '../durability/nats-node';

/**
 * A real loss, end to end: identity and the audit log as built processes on a private nats-server
 * whose store this test owns. Keys are created; NATS is stopped and its store copied (a backup);
 * more keys are created and revoked, and the audit log takes them in; then the old copy is put
 * back, so the stream (and the audit log's durable consumer) forget what came after it. At the end
 * KEYWAY holds every event of the event store exactly once, and the tenant's audit trail is
 * complete, without duplicates, and verifies.
 */
describe('a NATS store restored from an old copy: the relay republishes what it lost', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyway-relayloss-'));
  let infra: TestInfra;
  let node: NatsNode;
  let nc: NatsConnection;
  let jsm: JetStreamContext['jsm'];
  let identityDb: Client;
  let auditDb: Client;
  let stream: string;
  const services: ServiceProcess[] = [];

  const call = async <T>(subject: string, data: unknown): Promise<T> => {
    const m = await nc.request(subject, JSON.stringify({ pattern: subject, data, id: '1' }), { timeout: 15_000 });
    const answer = m.json<{ response?: T; err?: unknown }>();
    if (answer.response === undefined) throw new Error(`${subject}: ${JSON.stringify(answer.err ?? answer)}`);
    return answer.response;
  };
  /** NATS may still be coming back: retried until it answers. */
  const retried = <T>(fn: () => Promise<T>): Promise<T> =>
    eventually(async () => {
      try {
        return { v: await fn() };
      } catch {
        return undefined;
      }
    }, 30_000, 200).then((r) => r.v);

  let tenantId = '';
  const ctx = () => ({ tenant_id: tenantId, actor: { type: 'key', id: 'key_test' }, request_id: `req_${randomBytes(4).toString('hex')}`, scopes: ['keys:read', 'keys:write', 'audit:read'] });
  const createKeys = async (n: number, tag: string): Promise<IssuedKey[]> => {
    const out = [];
    for (let i = 0; i < n; i++) out.push(await retried(() => call<IssuedKey>(Rpc.keysCreate, { ctx: ctx(), body: { name: `${tag}-${i}`, scopes: [] } })));
    return out;
  };
  const revoke = (id: string) => retried(() => call(Rpc.keysRevoke, { ctx: ctx(), params: { id }, body: {} }));

  /** Every id the event store will relay to KEYWAY (key events and member events). */
  const storeIds = async (): Promise<string[]> =>
    (await identityDb.query<{ id: string }>(`SELECT event_id AS id FROM events UNION ALL SELECT id FROM member_outbox`)).rows.map((r) => r.id);
  const streamIds = async (): Promise<string[]> => {
    const { state } = await jsm.streams.info(stream);
    const ids: string[] = [];
    for (let seq = state.first_seq; state.messages > 0 && seq <= state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(stream, { seq });
      if (m) ids.push(m.header?.get('Nats-Msg-Id') ?? `?${seq}`);
    }
    return ids;
  };
  const tenantEventIds = async (): Promise<string[]> =>
    (await identityDb.query<{ id: string }>(`SELECT event_id AS id FROM events WHERE tenant_id = $1`, [tenantId])).rows.map((r) => r.id);
  const auditIds = async (): Promise<string[]> =>
    (await auditDb.query<{ id: string }>(`SELECT id FROM audit_events WHERE tenant_id = $1 AND key_id IS NOT NULL`, [tenantId])).rows.map((r) => r.id);

  beforeAll(async () => {
    infra = await startInfra('relayloss');
    node = new NatsNode(dir, await freePort(), '');
    Object.assign(node, { config: singleNodeConfig(dir, node.clientPort) });
    await node.start();
    stream = infra.env.KEYWAY_STREAM ?? 'KEYWAY';
    const env = {
      ...infra.env,
      NATS_URL: node.url,
      LOG_LEVEL: 'warn',
      AUDIT_CHAIN_KEY: randomBytes(32).toString('hex'),
      AUDIT_HEAD_PUBLISH_MS: '50',
      AUDIT_ACK_WAIT_MS: '2000',
      RELAY_POLL_MS: '100',
    };
    // identity first: it creates the stream the audit log consumes.
    for (const app of ['identity', 'audit-log']) {
      const s = new ServiceProcess(app, env);
      services.push(s);
      await s.start();
    }
    nc = await connect({ servers: node.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    ({ jsm } = await jetStreamContext(nc));
    identityDb = new Client({ connectionString: serviceDatabaseUrl(infra.databaseUrl, 'identity') });
    auditDb = new Client({ connectionString: serviceDatabaseUrl(infra.databaseUrl, 'audit-log') });
    await Promise.all([identityDb.connect(), auditDb.connect()]);
  }, 90_000);

  afterAll(async () => {
    await identityDb?.end();
    await auditDb?.end();
    for (const s of services) await s.kill('SIGTERM');
    await nc?.close();
    await node?.stop('SIGKILL');
    await infra?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('KEYWAY ends with every event once, and the audit trail complete, without duplicates, verified', async () => {
    const made = await call<CreatedTenant>(Rpc.tenantsCreate, { ctx: { ...ctx(), tenant_id: '', actor: { type: 'operator', id: 'op' } }, body: { name: 'Restored' } });
    tenantId = made.tenant.id;
    const early = await createKeys(4, 'before');
    await eventually(async () => (await auditIds()).length === (await tenantEventIds()).length, 30_000, 200);

    // The backup: a consistent copy of the stopped server's store.
    await node.stop();
    const backup = join(dir, 'backup');
    cpSync(node.storeDir, backup, { recursive: true });
    await node.start();

    const later = await createKeys(4, 'after');
    for (const k of [...later.slice(0, 2), early[0]!]) await revoke(k.id);
    // Relayed, and taken into the trail, before the loss.
    await eventually(async () => (await retried(streamIds)).length === (await storeIds()).length, 30_000, 200);
    await eventually(async () => (await auditIds()).length === (await tenantEventIds()).length, 30_000, 200);
    const lostCount = (await storeIds()).length;

    // The old copy back: the stream and the audit log's consumer forget everything after it.
    await node.stop();
    rmSync(node.storeDir, { recursive: true, force: true });
    cpSync(backup, node.storeDir, { recursive: true });
    await node.start();

    const store = await storeIds();
    await eventually(async () => (await retried(streamIds)).length >= store.length, 60_000, 250).catch(() => undefined);
    const inStream = await retried(streamIds);
    expect(inStream.length).toBe(store.length);
    expect(new Set(inStream).size).toBe(inStream.length);
    expect([...inStream].sort()).toEqual([...store].sort());
    expect(lostCount).toBe(store.length);

    // The audit trail: every key event of the tenant once, and the chain verifies.
    const expected = (await tenantEventIds()).sort();
    await eventually(async () => {
      const v = await retried(() => call<AuditVerification>(Rpc.auditEventsVerify, { ctx: ctx(), params: {}, query: {} }));
      return v.verified === true && (await auditIds()).length === expected.length ? v : undefined;
    }, 60_000, 250);
    const audit = await auditIds();
    expect(audit.length).toBe(new Set(audit).size);
    expect([...audit].sort()).toEqual(expected);
    const dupes = await auditDb.query(`SELECT id FROM audit_events GROUP BY id HAVING count(*) > 1`);
    expect(dupes.rows).toEqual([]);
  }, 150_000);
});
