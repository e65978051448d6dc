import {
  domainEventEnvelope,
  domainEventSubject,
  JourneyView,
  newId,
  parseDomainEvent,
  Rpc,
  STREAMS,
  type DomainEvent,
  type Environment,
  type RequestContext,
} from '@keyway/contracts';
import { ensureStream, jetStreamContext, type JetStreamContext } from '@keyway/messaging';
import { eventually, startRpcService, type RpcServiceHarness } from '@keyway/testing';
import type { Subscription } from '@nats-io/transport-node';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { AppModule } from '../app.module';
import { JourneysEnv, SERVICE, type JourneysConfig } from '../config';
import { contactLockKey } from '../contacts/contact-links';
import { ContactDeletionsConsumer } from '../contacts/contact-deletions.consumer';
import { JourneyEventsRelay } from './journey-events.relay';

const STREAM = STREAMS.domain.name;
const T = 'ten_events';
/**
 * How long the relay may take. It reads only below the oldest transaction open anywhere on the
 * Postgres server (pg_snapshot_xmin is cluster-wide), so another test's long transaction on the
 * shared server holds it back for that long: it waits, it never skips.
 */
const RELAY_WAIT_MS = 60_000;

/**
 * Domain events through real Postgres and a real nats-server: journeys' own events leave through
 * the outbox and the shared relay, and contacts' `deleted` events come in through the durable
 * consumer. The test plays contacts: it creates KEYWAY_DOMAIN (as contacts, its owner, does),
 * answers the contact checks, and publishes `keyway.contacts.deleted`.
 */
jest.setTimeout(2 * RELAY_WAIT_MS);

describe('journeys domain events', () => {
  let h: RpcServiceHarness<JourneysConfig>;
  let js: JetStreamContext;
  let contactsStub: Subscription;
  let ds: DataSource;

  const ctx = (mode: Environment = 'live'): RequestContext => ({ ...h.ctx(T), environment: mode });
  const ok = async (subject: string, data: unknown): Promise<JourneyView> => JourneyView.parse(await h.ok(subject, data));
  const create = (body: Record<string, unknown>, mode: Environment = 'live') => ok(Rpc.journeysCreate, { ctx: ctx(mode), body });
  const get = (id: string) => ok(Rpc.journeysGet, { ctx: ctx(), params: { id } });

  /** Every event in the stream on `subject`, in stream order. */
  async function published(subject: string): Promise<DomainEvent[]> {
    const info = await js.jsm.streams.info(STREAM);
    const out: DomainEvent[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const m = await js.jsm.streams.getMessage(STREAM, { seq }).catch(() => undefined);
      if (m?.subject === subject) out.push(parseDomainEvent(m.json()));
    }
    return out;
  }
  const eventsOf = async (subject: string, journeyId: string) => (await published(subject)).filter((e) => e.resource_id === journeyId);

  /** Publishes a `keyway.contacts.deleted` as contacts would; `copy` sends the same event again (a redelivery). */
  function contactDeleted(contactId: string, mode: Environment = 'live'): DomainEvent {
    return domainEventEnvelope({
      id: newId('event'),
      type: 'contacts.deleted',
      occurred_at: new Date().toISOString(),
      tenant_id: T,
      environment: mode,
      resource_id: contactId,
      actor: { type: 'key', id: 'key_test' },
      data: { id: contactId, external_id: null },
    });
  }
  const publish = async (e: unknown, copy = 0) =>
    js.js.publish(domainEventSubject('contacts.deleted'), JSON.stringify(e), { msgID: `${(e as { id?: string }).id ?? 'bad'}-${copy}-${Math.random()}` });
  /** The consumer has settled everything published so far. */
  async function drained(): Promise<void> {
    await eventually(async () => {
      const c = await js.jsm.consumers.info(STREAM, h.config.CONTACTS_DELETED_DURABLE);
      return c.num_pending === 0 && c.num_ack_pending === 0;
    }, 10_000);
  }
  const contactIdOf = async (id: string): Promise<string | null> =>
    ((await ds.query(`SELECT contact_id FROM journeys WHERE id = $1`, [id])) as Array<{ contact_id: string | null }>)[0]!.contact_id;

  beforeAll(async () => {
    h = await startRpcService('jevents', {
      name: SERVICE,
      env: JourneysEnv,
      module: (config) => AppModule.forRoot(config),
      overrides: { RELAY_POLL_MS: '20', CONTACTS_DELETED_NAK_DELAY_MS: '50' },
    });
    ds = h.app.get(DataSource);
    js = await jetStreamContext(h.nc);
    // Contacts owns these streams; here the test stands in for it (and for identity's DLQ).
    await ensureStream(js.jsm, { name: STREAM, subjects: [...STREAMS.domain.subjects], duplicateWindowMs: 10 * 60_000 });
    await ensureStream(js.jsm, { name: STREAMS.dlq.name, subjects: [...STREAMS.dlq.subjects] });
    // Every contact exists, as far as this stand-in for contacts knows (deletions come as events).
    contactsStub = h.nc.subscribe(Rpc.contactsExists, {
      callback: (_e, msg) => {
        msg.respond(JSON.stringify({ response: { exists: true } }));
      },
    });
    await h.nc.flush();
    await eventually(async () => h.app.get(ContactDeletionsConsumer).isConsuming && h.app.get(JourneyEventsRelay).relay?.leader === true, 10_000);
  });
  afterAll(async () => {
    contactsStub?.unsubscribe();
    await h?.close();
  });

  it('publishes keyway.journeys.created and .converted to KEYWAY_DOMAIN, in the envelope, with the mode', async () => {
    const j = await create({ anonymous_id: 'visitor-1', touchpoints: [{ type: 'campaign', occurred_at: '2024-01-01T00:00:00Z', source: 'ads' }] });
    const converted = await ok(Rpc.journeysAddConversion, { ctx: ctx(), params: { id: j.id }, body: { name: 'signup', occurred_at: '2024-01-02T00:00:00Z', value: 10 } });
    const test = await create({ anonymous_id: 'visitor-test' }, 'test');

    await eventually(async () => (await eventsOf(domainEventSubject('journeys.converted'), j.id)).length === 1, RELAY_WAIT_MS);
    const [created] = await eventsOf(domainEventSubject('journeys.created'), j.id);
    const { touchpoints: _t, conversions: _c, ...summary } = j;
    expect(created).toMatchObject({ type: 'journeys.created', schema_version: 1, tenant_id: T, environment: 'live', resource_id: j.id, actor: { type: 'key', id: 'key_test' }, data: summary });
    expect((created!.data as typeof summary).first_touch).toMatchObject({ type: 'campaign', source: 'ads' });
    const [conv] = await eventsOf(domainEventSubject('journeys.converted'), j.id);
    expect(conv).toMatchObject({ type: 'journeys.converted', environment: 'live', data: { conversion: { ...converted.conversions[0] }, journey: { id: j.id, conversions_total: 1 } } });
    // Its id is the JetStream message id: a republish by the relay would be dropped as a duplicate.
    await eventually(async () => (await eventsOf(domainEventSubject('journeys.created'), test.id)).length === 1, RELAY_WAIT_MS);
    expect((await eventsOf(domainEventSubject('journeys.created'), test.id))[0]).toMatchObject({ environment: 'test' });
  });

  it('writes an event exactly when the change commits: a refused write leaves none', async () => {
    const j = await create({ anonymous_id: 'full' });
    await ds.query(
      `INSERT INTO conversions (id, journey_id, name, occurred_at) SELECT 'cv_fill' || g || '_' || $1, $1, 'x', now() FROM generate_series(1, 100) g`,
      [j.id],
    );
    const refused = await h.call(Rpc.journeysAddConversion, { ctx: ctx(), params: { id: j.id }, body: { name: 'one too many', occurred_at: '2024-01-02T00:00:00Z' } });
    expect(refused.err?.code).toBe('conflict');
    const outbox = async (id: string) =>
      ((await ds.query(`SELECT subject FROM outbox WHERE payload->>'resource_id' = $1 ORDER BY position`, [id])) as Array<{ subject: string }>).map((r) => r.subject);
    expect(await outbox(j.id)).toEqual(['keyway.journeys.created']);
    const bad = await h.call(Rpc.journeysCreate, { ctx: ctx(), body: { anonymous_id: 'x', touchpoints: [{ type: 'nope', occurred_at: '2024-01-01T00:00:00Z' }] } });
    expect(bad.err?.code).toBe('invalid_request');
    const total = async () => Number(((await ds.query(`SELECT count(*)::int AS n FROM outbox`)) as Array<{ n: number }>)[0]!.n);
    const before = await total();
    await Promise.all(Array.from({ length: 10 }, (_, i) => create({ anonymous_id: `burst-${i}` })));
    expect(await total()).toBe(before + 10);
    // Every committed event reaches the stream, once.
    const outboxIds = ((await ds.query(`SELECT id FROM outbox ORDER BY position`)) as Array<{ id: string }>).map((r) => r.id);
    const streamIds = async () => [...(await published(domainEventSubject('journeys.created'))), ...(await published(domainEventSubject('journeys.converted')))].map((e) => e.id);
    await eventually(async () => (await streamIds()).length >= outboxIds.length, RELAY_WAIT_MS);
    expect((await streamIds()).sort()).toEqual([...outboxIds].sort());
  });

  it("unlinks a deleted contact's journeys, keeping their history; a second delivery changes nothing", async () => {
    const gone = newId('contact');
    const kept = newId('contact');
    const both = await create({ contact_id: gone, anonymous_id: 'anon-both', touchpoints: [{ type: 'page_view', occurred_at: '2024-01-01T00:00:00Z' }] });
    const only = await create({ contact_id: gone, touchpoints: [{ type: 'page_view', occurred_at: '2024-01-01T00:00:00Z' }] });
    await ok(Rpc.journeysAddConversion, { ctx: ctx(), params: { id: only.id }, body: { name: 'purchase', occurred_at: '2024-01-03T00:00:00Z', value: 5 } });
    const other = await create({ contact_id: kept });
    const beforeBoth = await get(both.id);
    const beforeOnly = await get(only.id);

    const event = contactDeleted(gone);
    await publish(event, 1);
    await publish(event, 2); // the same event delivered twice
    await drained();

    expect(await get(both.id)).toEqual({ ...beforeBoth, contact_id: null });
    // Its history stays whole; only the link went, even where no other visitor id was left.
    expect(await get(only.id)).toEqual({ ...beforeOnly, contact_id: null });
    expect((await get(other.id)).contact_id).toBe(kept);
    const listed = await h.ok<{ total: number }>(Rpc.journeysList, { ctx: ctx(), query: { contact_id: gone } });
    expect(listed.total).toBe(0);

    // A write naming the deleted contact afterwards (its contacts check raced the deletion: the
    // stand-in still answers "exists") is refused, not linked to nobody; so is a PATCH to it.
    const late = await h.call(Rpc.journeysCreate, { ctx: ctx(), body: { contact_id: gone, anonymous_id: 'late' } });
    expect(late.err).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ field: 'contact_id' })] });
    const patched = await h.call(Rpc.journeysUpdate, { ctx: ctx(), params: { id: other.id }, body: { contact_id: gone } });
    expect(patched.err).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ field: 'contact_id' })] });
    // A journey may still be written for the visitor's other ids, and updated, as before.
    const relinked = await ok(Rpc.journeysUpdate, { ctx: ctx(), params: { id: only.id }, body: { anonymous_id: 'found-again' } });
    expect(relinked).toMatchObject({ contact_id: null, anonymous_id: 'found-again' });

    // Redelivered much later (after a journey was linked to another contact): still nothing changes.
    await publish(event, 3);
    await drained();
    expect((await get(other.id)).contact_id).toBe(kept);
    expect(await get(only.id)).toMatchObject({ contact_id: null, anonymous_id: 'found-again', conversions_total: 1, touchpoints_total: 1 });
  });

  it('a deletion waits for a link being written at that moment, then removes it too', async () => {
    const contactId = newId('contact');
    const id = newId('journey');
    // A create that passed its contacts check and is inside its transaction, holding the contact's lock.
    const writer = new Client({ connectionString: (ds.options as { url: string }).url });
    await writer.connect();
    try {
      await writer.query('BEGIN');
      await writer.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [contactLockKey(T, contactId)]);
      await writer.query(`INSERT INTO journeys (id, tenant_id, environment, contact_id, created_at) VALUES ($1, $2, 'live', $3, now())`, [id, T, contactId]);
      await publish(contactDeleted(contactId));
      // The deletion is applied while the writer is still open: it must wait for it, not miss its row.
      await eventually(async () => {
        // This database's own: pg_locks lists the whole server's, other tests' included.
        const waiting = (await ds.query(
          `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        )) as Array<{ n: number }>;
        return waiting[0]!.n > 0;
      }, 10_000);
      await writer.query('COMMIT');
    } finally {
      await writer.end();
    }
    await drained();
    expect(await contactIdOf(id)).toBeNull();
  });

  it('only the named mode and tenant lose the link; a bad event is dead-lettered and the ones behind it still apply', async () => {
    const c = newId('contact');
    const live = await create({ contact_id: c });
    // Another tenant's journey naming the same id (it cannot, in practice: ids are unique) keeps it.
    const theirs = await ok(Rpc.journeysCreate, { ctx: { ...h.ctx('ten_other'), environment: 'live' }, body: { contact_id: c } });
    await publish({ id: 'evt_bad', type: 'contacts.deleted', schema_version: 1, tenant_id: T }); // no contact in it
    await publish('not json');
    await publish(contactDeleted(c, 'test')); // a test contact of that id: live journeys are not its
    await drained();
    expect(await contactIdOf(live.id)).toBe(c);
    await publish(contactDeleted(c));
    await drained();
    expect(await contactIdOf(live.id)).toBeNull();
    expect(await contactIdOf(theirs.id)).toBe(c);
    const dlq = await js.jsm.streams.info(STREAMS.dlq.name);
    expect(dlq.state.messages).toBe(2);
  });
});
