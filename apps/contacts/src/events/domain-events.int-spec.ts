import { Rpc, STREAMS, parseDomainEvent, type AccountView, type ContactView, type DomainEvent } from '@keyway/contracts';
import { jetStreamContext, type JetStreamContext } from '@keyway/messaging';
import { OutboxRelay } from '@keyway/outbox';
import { eventually, startRpcService, type RpcServiceHarness } from '@keyway/testing';
import { DataSource } from 'typeorm';
import { AppModule } from '../app.module';
import { ContactsEnv, SERVICE, type ContactsConfig } from '../config';
import { DomainRelayService } from './domain-relay.service';

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * Domain events through the outbox: each change reaches KEYWAY_DOMAIN exactly once, in the
 * envelope of the contract, also when the relay stops and another takes over, and when a relay
 * republishes what it had already sent (a crash between publish and checkpoint).
 */
describe('contacts: domain events', () => {
  let h: RpcServiceHarness<ContactsConfig>;
  let js: JetStreamContext;
  const ctx = (tenant: string) => ({ ...h.ctx(tenant), environment: 'test' as const });

  beforeAll(async () => {
    h = await startRpcService('contactevents', { name: SERVICE, env: ContactsEnv, module: (config) => AppModule.forRoot(config), overrides: { RELAY_POLL_MS: '50' } });
    js = await jetStreamContext(h.nc);
  });
  afterAll(() => h?.close());

  /** Every message in the stream, in stream order, with its subject. */
  async function streamed(): Promise<Array<{ subject: string; event: DomainEvent }>> {
    const info = await js.jsm.streams.info(STREAMS.domain.name);
    const out: Array<{ subject: string; event: DomainEvent }> = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const m = await js.jsm.streams.getMessage(STREAMS.domain.name, { seq });
      if (m) out.push({ subject: m.subject, event: parseDomainEvent(m.json()) });
    }
    return out;
  }
  // Generous: the relay reads only below the oldest transaction open anywhere on the server
  // (pg_snapshot_xmin is cluster-wide), and another test file's seeding may hold it for seconds.
  const WAIT_MS = 45_000;
  const settle = async (n: number) => {
    await eventually(async () => (await js.jsm.streams.info(STREAMS.domain.name)).state.messages >= n, WAIT_MS);
    await new Promise((r) => setTimeout(r, 300)); // a duplicate would show up now
    return streamed();
  };

  it('a created, updated and deleted contact reaches the stream exactly once each, in the contract envelope', async () => {
    const c = await h.ok<ContactView>(Rpc.contactsCreate, { ctx: ctx('ten_ev'), body: { type: 'lead', name: 'Ev', email: 'ev@example.com', external_id: 'x-1' } });
    const u = await h.ok<ContactView>(Rpc.contactsUpdate, { ctx: ctx('ten_ev'), params: { id: c.id }, body: { name: 'Eve' } });
    await h.ok(Rpc.contactsDelete, { ctx: ctx('ten_ev'), params: { id: c.id } });
    // A refused write publishes nothing.
    expect((await h.call(Rpc.contactsUpdate, { ctx: ctx('ten_ev'), params: { id: c.id }, body: { name: 'Gone' } })).err?.code).toBe('not_found');

    const events = await settle(3);
    expect(events.map((e) => e.subject)).toEqual(['keyway.contacts.created', 'keyway.contacts.updated', 'keyway.contacts.deleted']);
    const [created, updated, deleted] = events.map((e) => e.event);
    expect(created).toMatchObject({ type: 'contacts.created', schema_version: 1, tenant_id: 'ten_ev', environment: 'test', resource_id: c.id, actor: { type: 'key', id: 'key_test' }, data: c });
    expect(updated).toMatchObject({ type: 'contacts.updated', resource_id: c.id, data: u });
    expect(deleted).toMatchObject({ type: 'contacts.deleted', resource_id: c.id, data: { id: c.id, external_id: 'x-1' } });
    expect(new Set(events.map((e) => e.event.id)).size).toBe(3);
  });

  it('accounts publish theirs; deleting an account publishes its contacts unlinked', async () => {
    const before = (await streamed()).length;
    const a = await h.ok<AccountView>(Rpc.accountsCreate, { ctx: ctx('ten_ev_acc'), body: { name: 'Co' } });
    const c = await h.ok<ContactView>(Rpc.contactsCreate, { ctx: ctx('ten_ev_acc'), body: { type: 'lead', name: 'In Co', email: 'in@co.test', account_id: a.id } });
    await h.ok(Rpc.accountsUpsert, { ctx: ctx('ten_ev_acc'), params: { external_id: 'org' }, body: { name: 'Org' } });
    await h.ok(Rpc.accountsUpsert, { ctx: ctx('ten_ev_acc'), params: { external_id: 'org' }, body: { name: 'Org' } }); // unchanged: no event
    await h.ok(Rpc.accountsDelete, { ctx: ctx('ten_ev_acc'), params: { id: a.id } });
    const events = (await settle(before + 5)).slice(before);
    expect(events.map((e) => e.event.type)).toEqual(['accounts.created', 'contacts.created', 'accounts.created', 'contacts.updated', 'accounts.deleted']);
    expect(events[3]!.event).toMatchObject({ resource_id: c.id, data: { id: c.id, account_id: null } });
    expect(await h.ok<ContactView>(Rpc.contactsGet, { ctx: ctx('ten_ev_acc'), params: { id: c.id } })).toEqual(events[3]!.event.data);
  });

  it('exactly once across a relay restart, and when a restarted relay republishes from an old checkpoint', async () => {
    const service = h.app.get(DomainRelayService);
    const before = (await streamed()).length;
    // The relay stops (a replica dies); writes go on committing into the outbox meanwhile.
    await service.relay!.stop();
    const made: string[] = [];
    for (let i = 0; i < 10; i++) made.push((await h.ok<ContactView>(Rpc.contactsCreate, { ctx: ctx('ten_ev_restart'), body: { type: 'lead', name: `R${i}`, email: `r${i}@example.com` } })).id);
    expect((await streamed()).length).toBe(before);

    const url = (h.app.get(DataSource).options as { url: string }).url;
    const relay = () => new OutboxRelay({ name: 'domain', databaseUrl: url, source: { table: 'outbox', channel: 'contacts_outbox' }, js: js.js, logger: silent, pollMs: 50 });
    const second = relay();
    second.start();
    try {
      const after = await settle(before + 10);
      expect(after.slice(before).map((e) => e.event.resource_id)).toEqual(made);
      // A crash after publishing but before the checkpoint: the next relay starts from far behind
      // and publishes everything again; the event ids (message ids) keep the stream exactly once.
      await second.stop();
      await h.app.get(DataSource).query(`UPDATE relay_checkpoints SET last_tx = '0', last_position = 0 WHERE name = 'domain'`);
      const third = relay();
      third.start();
      try {
        await eventually(async () => third.published >= before + 10, WAIT_MS);
        const again = await settle(before + 10);
        expect(again).toHaveLength(before + 10);
        expect(new Set(again.map((e) => e.event.id)).size).toBe(before + 10);
      } finally {
        await third.stop();
      }
    } finally {
      await second.stop();
    }
  });
});
