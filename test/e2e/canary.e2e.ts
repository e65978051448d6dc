import { hashKey, type CreatedTenant, type IssuedKey } from '@keyway/contracts';
import { jetStreamContext } from '@keyway/messaging';
import { eventually } from '@keyway/testing';
import { connect } from '@nats-io/transport-node';
import { Client } from 'pg';
import { request, startPlatform, type Platform } from './platform';

/**
 * A canary secret goes through a whole key lifecycle with every log at its most verbose; then it
 * is searched for in every table of every service, every JetStream message and every log line.
 * Its hash may only sit in identity's credential table.
 */
describe('secrets never leak', () => {
  let p: Platform;
  beforeAll(async () => {
    p = await startPlatform('canary', { LOG_LEVEL: 'trace', HTTP_LOGS: 'true' });
  }, 120_000);
  afterAll(async () => {
    await p?.stop();
  });

  it('is found nowhere but as a hash in the credential table', async () => {
    const tenant = await request<CreatedTenant>(p.adminUrl, 'POST', '/admin/v1/tenants', { token: p.adminToken, body: { name: 'Canary' } });
    const root = tenant.body.root_key.key;
    const created = await request<IssuedKey>(p.url, 'POST', '/v1/keys', { token: root, body: { name: 'canary', scopes: ['contacts:write'] } });
    const canary = created.body.key;
    const id = created.body.id;
    expect((await request(p.url, 'GET', '/v1/contacts', { token: canary })).status).toBe(200);
    expect((await request(p.url, 'POST', '/v1/contacts', { token: canary, body: { type: 'lead', name: 'C', email: 'c@example.com' } })).status).toBe(201);
    // A wrong secret for the right prefix, and a malformed key carrying the canary.
    const wrong = `${canary.slice(0, -10)}AAAAAAAAAA`;
    expect((await request(p.url, 'GET', '/v1/whoami', { token: wrong })).status).toBe(401);
    expect((await request(p.url, 'GET', '/v1/whoami', { token: `${canary}x` })).status).toBe(401);
    expect((await request(p.url, 'GET', '/v1/whoami', { headers: { authorization: canary } })).status).toBe(401);

    const rotated = await request<IssuedKey>(p.url, 'POST', `/v1/keys/${id}/rotate`, { token: root, body: { grace_period_seconds: 60 } });
    expect(rotated.status).toBe(200);
    const second = rotated.body.key;
    expect((await request(p.url, 'GET', '/v1/whoami', { token: canary })).status).toBe(200);
    expect((await request(p.url, 'GET', '/v1/whoami', { token: second })).status).toBe(200);
    expect((await request(p.url, 'PATCH', `/v1/keys/${id}`, { token: root, body: { enabled: false, name: 'canary-off' } })).status).toBe(200);
    expect((await request(p.url, 'PATCH', `/v1/keys/${id}`, { token: root, body: { enabled: true } })).status).toBe(200);
    expect((await request(p.url, 'POST', `/v1/keys/${id}/revoke`, { token: root })).status).toBe(200);
    expect((await request(p.url, 'GET', '/v1/whoami', { token: second })).status).toBe(401);

    // Wait until the trail has reached the audit log, and the gateway's aggregated use its usage table.
    await eventually(async () => {
      const r = await request<{ data: Array<{ type: string }> }>(p.url, 'GET', `/v1/keys/${id}/logs`, { token: root });
      const u = await request<{ data: Array<{ requests: number }> }>(p.url, 'GET', `/v1/keys/${id}/usage?interval=minute`, { token: root });
      return r.body.data.some((e) => e.type === 'revoked') && (u.body.data ?? []).some((b) => b.requests > 0);
    }, 20_000, 200);

    const secrets = [canary, second].map((k) => ({ key: k, secret: k.split('_')[3]!, hash: hashKey(k) }));
    const needles = (allowHash: boolean) => secrets.flatMap((s) => (allowHash ? [s.secret] : [s.secret, s.hash]));

    // Every table of every service database.
    const admin = new Client({ connectionString: p.infra.databaseUrl.replace(/\/[^/]+$/, '/postgres') });
    await admin.connect();
    const dbs = (await admin.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE $1 || '%'`, [new URL(p.infra.databaseUrl).pathname.slice(1)])).rows;
    await admin.end();
    expect(dbs.length).toBe(4);
    for (const { datname } of dbs) {
      const db = new Client({ connectionString: p.infra.databaseUrl.replace(/\/[^/]+$/, `/${datname}`) });
      await db.connect();
      const tables = (await db.query<{ t: string }>(`SELECT quote_ident(table_name) AS t FROM information_schema.tables WHERE table_schema = 'public'`)).rows;
      for (const { t } of tables) {
        const credentialTable = datname.endsWith('_identity') && t === 'key_credentials';
        for (const needle of needles(credentialTable)) {
          const hits = await db.query(`SELECT 1 FROM ${t} x WHERE x::text LIKE '%' || $1 || '%' LIMIT 1`, [needle]);
          expect({ table: `${datname}.${t}`, found: hits.rowCount }).toEqual({ table: `${datname}.${t}`, found: 0 });
        }
      }
      await db.end();
    }

    // Every JetStream message.
    const nc = await connect({ servers: p.infra.natsUrl });
    const { js, jsm } = await jetStreamContext(nc);
    const info = await jsm.streams.info(p.infra.stream);
    expect(info.state.messages).toBeGreaterThanOrEqual(7);
    const consumer = await js.consumers.get(p.infra.stream);
    const batch = await consumer.fetch({ max_messages: info.state.messages, expires: 3_000 });
    let read = 0;
    for await (const m of batch) {
      const text = m.string();
      for (const needle of needles(false)) expect(text.includes(needle)).toBe(false);
      if (++read >= info.state.messages) break;
    }
    expect(read).toBe(info.state.messages);
    await nc.close();

    // Every log line of every process, at trace level with request logs on.
    const logs = p.output();
    expect(logs.length).toBeGreaterThan(1_000);
    expect(logs).toContain(`/v1/keys/${id}/rotate`); // request logs were on
    for (const needle of needles(false)) expect(logs.includes(needle)).toBe(false);
  });
});
