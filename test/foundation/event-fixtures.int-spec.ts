import { eventFixtures, eventSubject, KEY_EVENT_VERSIONS, STREAMS, USAGE_SUBJECT, type KeyEvent } from '@keyway/contracts';
import { ensureStream, jetStreamContext, type JetStreamContext } from '@keyway/messaging';
import { PrivateNats, eventually } from '@keyway/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { parseAuditEvent } from '../../apps/audit-log/src/audit/audit-event';
import { parseKeyLifecycleEvent, parseUsageEvent } from '../../apps/audit-log/src/usage/usage-events';
import { keyEvent as gatewayInvalidationParse } from '../../apps/gateway/src/auth/invalidation.listener';
import { parseLastUse } from '../../apps/identity/src/last-used/last-used.consumer';
import { MemoryStore, consumeKeyEvents, type RunningConsumer } from '../../examples/key-events-consumer/consumer';

/**
 * Every event type at every schema version (`eventFixtures()`, enumerated from KEY_EVENT_VERSIONS)
 * through every consumer's parse path, and the published example against a real nats-server: a
 * version cannot ship unless each consumer reads it. The usage module's apply path runs the same
 * fixtures in apps/audit-log/src/usage/usage.int-spec.ts.
 */
const fixtures = eventFixtures();
const lifecycle = fixtures.filter((f) => f.type !== 'used');
const used = fixtures.filter((f) => f.type === 'used');
const label = (f: (typeof fixtures)[number]) => `${f.type} v${f.schema_version}`;
const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

describe('every event fixture through every consumer', () => {
  it('covers every type and version', () => {
    expect(fixtures).toHaveLength(Object.values(KEY_EVENT_VERSIONS).reduce((a, b) => a + b, 0));
  });

  describe.each(fixtures.map((f) => [label(f), f] as const))('%s', (_name, f) => {
    it('audit-log ingest reads it at the current version', () => {
      expect(parseAuditEvent(f.event)).toMatchObject({ id: f.event.id, type: f.type, schema_version: KEY_EVENT_VERSIONS[f.type] });
    });

    it("the gateway's invalidation listener reads it (an unreadable event would empty its cache)", () => {
      expect(gatewayInvalidationParse(bytes(f.event))).toMatchObject({ id: f.event.id, type: f.type });
    });
  });

  describe.each(lifecycle.map((f) => [label(f), f] as const))('%s', (_name, f) => {
    it("audit-log's key projection reads it", () => {
      expect(parseKeyLifecycleEvent(f.event)).toMatchObject({ id: f.event.id, type: f.type });
    });
  });

  describe.each(used.map((f) => [label(f), f] as const))('%s', (_name, f) => {
    it("identity's last-used projection reads it", () => {
      expect(parseLastUse(f.event)).toMatchObject({ keyId: 'key_fixture', tenantId: 'ten_fixture', at: '2026-01-02T03:04:05.000Z' });
    });

    it("audit-log's usage consumer reads it; a v1 event's scopes are unknown (null), never none", () => {
      const r = parseUsageEvent(f.event);
      expect(r).toMatchObject({ id: f.event.id, minute: Date.parse('2026-01-02T03:04:00.000Z'), lastAt: Date.parse('2026-01-02T03:04:05.000Z') });
      expect(r.scopes).toEqual(f.schema_version === 1 ? null : ['contacts:read']);
      expect([r.count, r.rateLimited]).toEqual(f.schema_version === 1 ? [3, 0] : [5, 2]);
    });
  });

  describe('examples/key-events-consumer against a real nats-server', () => {
    let nats: PrivateNats;
    let nc: NatsConnection;
    let ctx: JetStreamContext;
    const running: RunningConsumer[] = [];

    beforeAll(async () => {
      nats = await PrivateNats.start();
      nc = await connect({ servers: nats.url });
      ctx = await jetStreamContext(nc);
      // The streams as identity configures them: lifecycle subjects in KEYWAY, used in KEYWAY_USAGE.
      await ensureStream(ctx.jsm, { name: STREAMS.keys.name, subjects: [...STREAMS.keys.subjects], duplicateWindowMs: 10 * 60_000 });
      await ensureStream(ctx.jsm, { name: STREAMS.usage.name, subjects: [...STREAMS.usage.subjects], duplicateWindowMs: 10 * 60_000 });
    });
    afterAll(async () => {
      for (const r of running) await r.stop();
      await nc?.close();
      await nats?.stop();
    });

    it('handles every fixture, upcast to the current version, and finds none invalid', async () => {
      for (const f of fixtures) await ctx.js.publish(eventSubject(f.type), JSON.stringify(f.event), { msgID: String(f.event.id) });
      const handled: KeyEvent[] = [];
      const invalid: unknown[] = [];
      const common = { js: ctx.js, jsm: ctx.jsm, retryMs: 50, handle: async (e: KeyEvent) => void handled.push(e), onInvalid: (err: unknown) => void invalid.push(err) };
      running.push(await consumeKeyEvents({ ...common, durable: 'fixtures-lifecycle', store: new MemoryStore() }));
      running.push(await consumeKeyEvents({ ...common, durable: 'fixtures-usage', stream: STREAMS.usage.name, filterSubject: USAGE_SUBJECT, inOrder: false, store: new MemoryStore() }));

      await eventually(async () => handled.length + invalid.length >= fixtures.length, 20_000);
      expect(invalid).toEqual([]);
      expect(handled.map((e) => e.id).sort()).toEqual(fixtures.map((f) => String(f.event.id)).sort());
      for (const e of handled) expect(e.schema_version).toBe(KEY_EVENT_VERSIONS[e.type]);
      const v1 = handled.find((e) => e.id.endsWith('_used_v1'));
      expect(v1?.type === 'used' && v1.data.scopes_used).toBeNull();
    });
  });
});
