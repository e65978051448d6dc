import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { natsPermissions, renderNatsAuthConf, renderNatsAuthConfigMap, DOMAIN_PUBLISHERS, RPC_SERVICES, type NatsUser } from './nats-permissions';
import { Rpc, SERVICE_CALLS, STREAMS, USAGE_SUBJECT } from './subjects';

const ROOT = join(__dirname, '../../..');
const perms = natsPermissions();
const of = (user: NatsUser) => perms.find((p) => p.user === user)!;

/** NATS subject matching: `*` one token, `>` the rest (one token or more). */
function matches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length || (p[i] !== '*' && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}
const canPublish = (user: NatsUser, subject: string) => of(user).publish.some((p) => matches(p, subject));
const canSubscribe = (user: NatsUser, subject: string) => of(user).subscribe.some((p) => matches(p, subject));

describe('NATS permissions generated from the subjects table', () => {
  it('the checked-in infra/nats/auth.conf and infra/k8s/nats-auth.yaml are what the generator writes (npm run nats:auth)', () => {
    expect(readFileSync(join(ROOT, 'infra/nats/auth.conf'), 'utf8')).toBe(renderNatsAuthConf());
    expect(readFileSync(join(ROOT, 'infra/k8s/nats-auth.yaml'), 'utf8')).toBe(renderNatsAuthConfigMap());
  });

  it('puts every request subject in the namespace of the one service that serves it', () => {
    for (const subject of Object.values(Rpc)) {
      const service = RPC_SERVICES[subject.split('.')[2] as keyof typeof RPC_SERVICES];
      expect(service).toBeDefined();
      const servers = perms.filter((p) => p.subscribe.some((s) => matches(s, subject))).map((p) => p.user);
      expect(servers).toEqual([service]);
    }
  });

  it('lets the gateway alone call request subjects, apart from the declared service-to-service calls', () => {
    for (const subject of Object.values(Rpc)) {
      const callers = perms.filter((p) => p.publish.some((s) => matches(s, subject))).map((p) => p.user).sort();
      const declared = SERVICE_CALLS.filter((c) => c.subject === subject).map((c) => c.from);
      expect(callers).toEqual(declared.length > 0 ? declared.sort() : ['gateway']);
    }
    expect(canPublish('journeys', Rpc.contactsExists)).toBe(true);
    expect(canPublish('journeys', Rpc.contactsList)).toBe(false);
    expect(canPublish('contacts', Rpc.tenantsCreate)).toBe(false);
  });

  it('lets identity alone publish key, member and tenant lifecycle events; the gateway alone keyway.keys.used', () => {
    for (const subject of STREAMS.keys.subjects) {
      expect(perms.filter((p) => p.publish.some((s) => matches(s, subject))).map((p) => p.user)).toEqual(['identity']);
    }
    // Listed one by one: a subject outside the table is nobody's to publish.
    for (const subject of ['keyway.keys.anything', 'keyway.members.x', 'keyway.tenants.y']) {
      expect(perms.filter((p) => p.publish.some((s) => matches(s, subject))).map((p) => p.user)).toEqual([]);
    }
    expect(perms.filter((p) => p.publish.some((s) => matches(s, USAGE_SUBJECT))).map((p) => p.user)).toEqual(['gateway']);
  });

  it('gives each domain subject one publisher, and the audit heads to the audit log', () => {
    expect(Object.keys(DOMAIN_PUBLISHERS).sort()).toEqual([...STREAMS.domain.subjects].sort());
    expect(canPublish('contacts', 'keyway.contacts.deleted')).toBe(true);
    expect(canPublish('journeys', 'keyway.contacts.deleted')).toBe(false);
    expect(canPublish('journeys', 'keyway.journeys.created')).toBe(true);
    expect(perms.filter((p) => p.publish.some((s) => matches(s, 'keyway.audit.heads.ten_1'))).map((p) => p.user)).toEqual(['audit-log']);
  });

  it('runs invalidation from identity to the gateways and heartbeats back', () => {
    expect(canPublish('identity', 'keyway.gateway.invalidate')).toBe(true);
    expect(canSubscribe('gateway', 'keyway.gateway.invalidate')).toBe(true);
    expect(of('gateway').allowResponses).toBe(true);
    expect(canPublish('gateway', 'keyway.gateway.heartbeat')).toBe(true);
    expect(canSubscribe('identity', 'keyway.gateway.heartbeat')).toBe(true);
    for (const user of ['contacts', 'journeys', 'audit-log', 'reader'] as const) {
      expect(canPublish(user, 'keyway.gateway.invalidate')).toBe(false);
      expect(canSubscribe(user, 'keyway.gateway.invalidate')).toBe(false);
    }
  });

  it('lets only a stream\'s owner create or change it', () => {
    for (const [, stream] of Object.entries(STREAMS)) {
      for (const verb of ['CREATE', 'UPDATE', 'DELETE', 'PURGE']) {
        const allowed = perms.filter((p) => p.publish.some((s) => matches(s, `$JS.API.STREAM.${verb}.${stream.name}`))).map((p) => p.user);
        expect(allowed).toEqual(verb === 'CREATE' || verb === 'UPDATE' ? [stream.owner] : []);
      }
    }
  });

  it('gives the read-only user consumers on KEYWAY and KEYWAY_DOMAIN and no event subject, no DLQ, no deletes', () => {
    const reader = of('reader');
    expect(reader.publish.every((s) => s.startsWith('$JS.'))).toBe(true);
    expect(canPublish('reader', '$JS.API.CONSUMER.CREATE.KEYWAY.team.keyway.keys.>')).toBe(true);
    expect(canPublish('reader', '$JS.API.CONSUMER.MSG.NEXT.KEYWAY_DOMAIN.team')).toBe(true);
    expect(canPublish('reader', '$JS.ACK.KEYWAY.team.1.2.3.4.5')).toBe(true);
    expect(canPublish('reader', '$JS.API.CONSUMER.DELETE.KEYWAY.audit-log')).toBe(false);
    expect(canPublish('reader', '$JS.API.CONSUMER.CREATE.KEYWAY_USAGE.team')).toBe(false);
    expect(reader.allowResponses).toBe(false);
  });

  it('gives each user its own inbox and nobody anything like > or _INBOX.>', () => {
    for (const p of perms) {
      expect(p.subscribe).toContain(`_INBOX.${p.user}.>`);
      for (const s of [...p.publish, ...p.subscribe]) expect(['>', '_INBOX.>', '$JS.API.>', 'keyway.>']).not.toContain(s);
      expect(perms.filter((q) => q.user !== p.user).some((q) => q.subscribe.some((s) => matches(s, `_INBOX.${p.user}.abc.1`)))).toBe(false);
    }
  });
});
