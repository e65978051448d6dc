import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deadLetterSubject, GATEWAY_HEARTBEAT, GATEWAY_INVALIDATE, Rpc, STREAMS, USAGE_SUBJECT, eventSubject, type NatsUser } from '@keyway/contracts';
import { ensureStream, jetStreamContext } from '@keyway/messaging';
import { natsConnectionOptions } from '@keyway/runtime';
import { eventually, makeTestCertificates, PrivateNats, startLockedNats, type LockedNats, REPO_ROOT } from '@keyway/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { MemoryStore, consumeKeyEvents, readerConnectionOptions } from '../../examples/key-events-consumer/consumer';

/**
 * The NATS wall (issue 13, DESIGN Operations): a server running the checked-in
 * infra/nats/auth.conf refuses anyone without a password, and each user can do its own flows and
 * nothing else. Permission violations are seen twice: as the server's error on the connection,
 * and as nothing arriving where it would have.
 */
const enc = new TextEncoder();
const dec = new TextDecoder();

describe('the NATS wall: infra/nats/auth.conf on a real nats-server', () => {
  let locked: LockedNats;
  const open: NatsConnection[] = [];
  const violations = new Map<NatsConnection, string[]>();

  async function as(user: NatsUser): Promise<NatsConnection> {
    const nc = await connect({ ...natsConnectionOptions({ NATS_URL: locked.url, NATS_USER: user, NATS_PASSWORD: locked.password(user) }, `wall-${user}`), timeout: 3_000 });
    open.push(nc);
    const seen: string[] = [];
    violations.set(nc, seen);
    void (async () => {
      for await (const s of nc.status()) if (s.type === 'error') seen.push(String((s as { error?: unknown }).error));
    })();
    return nc;
  }
  const refused = (nc: NatsConnection, subject: string) =>
    eventually(async () => violations.get(nc)!.some((v) => v.includes('Permissions Violation') && v.includes(subject)), 3_000);

  beforeAll(async () => {
    locked = await startLockedNats(readFileSync(join(REPO_ROOT, 'infra/nats/auth.conf'), 'utf8'));
  });
  afterAll(async () => {
    await Promise.all(open.map((nc) => nc.close().catch(() => undefined)));
    await locked?.stop();
  });

  it('refuses a client without credentials, with a wrong password, or as a user that does not exist', async () => {
    await expect(connect({ servers: locked.url, timeout: 3_000, maxReconnectAttempts: 0 })).rejects.toThrow(/Authorization/i);
    await expect(connect({ servers: locked.url, user: 'gateway', pass: 'guess', timeout: 3_000, maxReconnectAttempts: 0 })).rejects.toThrow(/Authorization/i);
    await expect(connect({ servers: locked.url, user: 'admin', pass: locked.password('gateway'), timeout: 3_000, maxReconnectAttempts: 0 })).rejects.toThrow(/Authorization/i);
  });

  it('lets the gateway call identity, and not the contacts user; contacts cannot publish keyway.keys.created', async () => {
    const identity = await as('identity');
    const calls: string[] = [];
    identity.subscribe('keyway.rpc.identity.>', { queue: 'identity', callback: (_e, m) => {
      calls.push(m.subject);
      m.respond(enc.encode('{"response":"ok"}'));
    } });
    const idCtx = await jetStreamContext(identity);
    await ensureStream(idCtx.jsm, { name: STREAMS.keys.name, subjects: [...STREAMS.keys.subjects] });
    await identity.flush();

    const gateway = await as('gateway');
    expect(dec.decode((await gateway.request(Rpc.keysVerify, enc.encode('{}'), { timeout: 3_000 })).data)).toBe('{"response":"ok"}');
    expect(calls).toEqual([Rpc.keysVerify]);

    const contacts = await as('contacts');
    await expect(contacts.request(Rpc.tenantsCreate, enc.encode('{}'), { timeout: 1_000 })).rejects.toThrow();
    await refused(contacts, Rpc.tenantsCreate);
    contacts.publish(eventSubject('created'), enc.encode('{"forged":true}'));
    await refused(contacts, eventSubject('created'));
    // Nor can it listen in: on identity's requests, or on the gateway's inbox where their answers go.
    contacts.subscribe('keyway.rpc.identity.>');
    await refused(contacts, 'keyway.rpc.identity.>');
    contacts.subscribe('_INBOX.gateway.>');
    await refused(contacts, '_INBOX.gateway.>');
    await gateway.request(Rpc.keysList, enc.encode('{}'), { timeout: 3_000 });
    expect(calls).toEqual([Rpc.keysVerify, Rpc.keysList]);
    expect((await idCtx.jsm.streams.info(STREAMS.keys.name)).state.messages).toBe(0);
    // The server logs each refusal (walls.e2e.ts relies on that log to catch a too-narrow permission).
    await eventually(async () => /Violation/.test(locked.nats.log()) && locked.nats.log().includes(eventSubject('created')));

    // The gateway may not publish lifecycle events either: identity alone does.
    gateway.publish(eventSubject('revoked'), enc.encode('{}'));
    await refused(gateway, eventSubject('revoked'));
    await idCtx.js.publish(eventSubject('created'), enc.encode('{"by":"identity"}'));
    expect((await idCtx.jsm.streams.info(STREAMS.keys.name)).state.messages).toBe(1);
  });

  it('runs invalidation identity → gateways, heartbeats gateway → identity, keyway.keys.used from the gateway only', async () => {
    const identity = await as('identity');
    const gateway = await as('gateway');
    gateway.subscribe(GATEWAY_INVALIDATE, { callback: (_e, m) => void m.respond(enc.encode('{"ok":true}')) });
    const beats: string[] = [];
    identity.subscribe(GATEWAY_HEARTBEAT, { callback: (_e, m) => void beats.push(dec.decode(m.data)) });
    await Promise.all([gateway.flush(), identity.flush()]);
    const acks = await identity.requestMany(GATEWAY_INVALIDATE, enc.encode('{}'), { maxWait: 1_000, maxMessages: 1 });
    let n = 0;
    for await (const _ of acks) n++;
    expect(n).toBe(1);
    gateway.publish(GATEWAY_HEARTBEAT, enc.encode('beat'));
    await eventually(async () => beats.includes('beat'));

    const idCtx = await jetStreamContext(identity);
    await ensureStream(idCtx.jsm, { name: STREAMS.usage.name, subjects: [...STREAMS.usage.subjects] });
    // A request to a stream's subject is answered by JetStream with its publish acknowledgement.
    const ack = JSON.parse(dec.decode((await gateway.request(USAGE_SUBJECT, enc.encode('{}'), { timeout: 3_000 })).data)) as { stream?: string };
    expect(ack.stream).toBe(STREAMS.usage.name);

    const journeys = await as('journeys');
    journeys.publish(GATEWAY_INVALIDATE, enc.encode('{}'));
    await refused(journeys, GATEWAY_INVALIDATE);
    journeys.publish(USAGE_SUBJECT, enc.encode('{}'));
    await refused(journeys, USAGE_SUBJECT);
  });

  it('lets a consumer park a poison message in KEYWAY_DLQ for the streams it reads, and no other', async () => {
    const identity = await as('identity');
    const { jsm } = await jetStreamContext(identity);
    await ensureStream(jsm, { name: STREAMS.dlq.name, subjects: [...STREAMS.dlq.subjects] });
    const audit = await as('audit-log');
    const ack = JSON.parse(dec.decode((await audit.request(deadLetterSubject(STREAMS.keys.name, 'audit-log'), enc.encode('{}'), { timeout: 3_000 })).data)) as { stream?: string };
    expect(ack.stream).toBe(STREAMS.dlq.name);
    // Audit-log does not read KEYWAY_DOMAIN, so it has no dead letters there.
    audit.publish(deadLetterSubject(STREAMS.domain.name, 'audit-log'), enc.encode('{}'));
    await refused(audit, deadLetterSubject(STREAMS.domain.name, 'audit-log'));
    expect((await jsm.streams.info(STREAMS.dlq.name)).state.messages).toBe(1);
  });

  it('lets journeys ask contacts whether a contact exists, and nothing else of contacts', async () => {
    const contacts = await as('contacts');
    contacts.subscribe('keyway.rpc.contacts.>', { queue: 'contacts', callback: (_e, m) => void m.respond(enc.encode('{"response":true}')) });
    await contacts.flush();
    const journeys = await as('journeys');
    expect(dec.decode((await journeys.request(Rpc.contactsExists, enc.encode('{}'), { timeout: 3_000 })).data)).toBe('{"response":true}');
    await expect(journeys.request(Rpc.contactsList, enc.encode('{}'), { timeout: 1_000 })).rejects.toThrow();
    await refused(journeys, Rpc.contactsList);
  });

  it('gives the read-only user the example consumer on KEYWAY, and no way to publish an event or touch the streams', async () => {
    const identity = await as('identity');
    const idCtx = await jetStreamContext(identity);
    await ensureStream(idCtx.jsm, { name: STREAMS.keys.name, subjects: [...STREAMS.keys.subjects] });
    const before = (await idCtx.jsm.streams.info(STREAMS.keys.name)).state.messages;

    const reader = await connect({ ...readerConnectionOptions(locked.url, locked.password('reader')), timeout: 3_000 });
    open.push(reader);
    const seen: string[] = [];
    violations.set(reader, seen);
    void (async () => {
      for await (const s of reader.status()) if (s.type === 'error') seen.push(String((s as { error?: unknown }).error));
    })();
    const { js, jsm } = await jetStreamContext(reader);
    const handled: string[] = [];
    const running = await consumeKeyEvents({ js, jsm, durable: 'wall-team', store: new MemoryStore(), inOrder: false, onInvalid: () => handled.push('invalid'), handle: async (e) => void handled.push(e.id) });
    try {
      await eventually(async () => handled.length >= before && before > 0);
    } finally {
      await running.stop();
    }

    reader.publish(eventSubject('created'), enc.encode('{}'));
    await refused(reader, eventSubject('created'));
    await expect(js.publish(eventSubject('revoked'), enc.encode('{}'), { timeout: 1_000 })).rejects.toThrow();
    await expect(jsm.streams.delete(STREAMS.keys.name)).rejects.toThrow();
    await expect(jsm.streams.update(STREAMS.keys.name, { max_age: 1 })).rejects.toThrow();
    await expect(jsm.consumers.delete(STREAMS.keys.name, 'wall-team')).rejects.toThrow();
    expect((await idCtx.jsm.streams.info(STREAMS.keys.name)).state.messages).toBe(before);
    expect((await idCtx.jsm.consumers.info(STREAMS.keys.name, 'wall-team')).name).toBe('wall-team');
  });

  it('speaks TLS with infra/nats/auth-tls.conf: a client with NATS_TLS_CA connects as its user, one without TLS is refused', async () => {
    const certs = makeTestCertificates();
    const auth = readFileSync(join(REPO_ROOT, 'infra/nats/auth.conf'), 'utf8');
    const tls = readFileSync(join(REPO_ROOT, 'infra/nats/auth-tls.conf'), 'utf8');
    const password = 'pw-tls-contacts';
    const env = Object.fromEntries([...auth.matchAll(/\$(NATS_PASSWORD_[A-Z0-9_]+)/g)].map((m) => [m[1]!, password]));
    const server = await PrivateNats.start({
      config: 'include auth.conf\ninclude auth-tls.conf\n',
      files: { 'auth.conf': auth, 'auth-tls.conf': tls },
      env: { ...env, NATS_TLS_SERVER_CERT: certs.cert, NATS_TLS_SERVER_KEY: certs.key },
    });
    try {
      const nc = await connect({ ...natsConnectionOptions({ NATS_URL: server.url, NATS_USER: 'contacts', NATS_PASSWORD: password, NATS_TLS_CA: certs.ca }, 'tls'), timeout: 3_000 });
      expect(nc.info?.tls_required).toBe(true);
      await nc.close();
      await expect(connect({ servers: server.url, user: 'contacts', pass: password, timeout: 3_000, maxReconnectAttempts: 0, tls: null })).rejects.toThrow();
    } finally {
      await server.stop();
      certs.remove();
    }
  });
});
