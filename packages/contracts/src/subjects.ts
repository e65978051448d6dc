import { KEY_EVENT_TYPES, type KeyEventType } from './events';
import { MEMBER_EVENT_TYPES, memberEventSubject } from './members';
import { TENANT_EVENT_TYPES, tenantEventSubject } from './tenant-events';

/**
 * Every NATS subject, in one table. Event subjects (captured by JetStream streams) and request
 * subjects (`keyway.rpc.>`) never overlap: a stream that captured a request subject would answer
 * the request itself.
 */
export const EVENT_SUBJECTS = 'keyway.keys.>';
export const eventSubject = (type: KeyEventType): string => `keyway.keys.${type}`;

/** Key lifecycle event types: the key's own history, kept for good in `KEYWAY`. */
export const LIFECYCLE_EVENT_TYPES = KEY_EVENT_TYPES.filter((t): t is Exclude<KeyEventType, 'used'> => t !== 'used');
/** The key lifecycle subjects alone (`KEYWAY` also holds the members'). */
export const KEY_LIFECYCLE_SUBJECTS = LIFECYCLE_EVENT_TYPES.map(eventSubject);
/** `keyway.members.<type>`: tenant members' lifecycle, in `KEYWAY` too. */
export const MEMBER_EVENT_SUBJECTS = MEMBER_EVENT_TYPES.map(memberEventSubject);
/** `keyway.tenants.<type>`: what an operator changed on a tenant, in `KEYWAY` too. */
export const TENANT_EVENT_SUBJECTS = TENANT_EVENT_TYPES.map(tenantEventSubject);
/** `used` events: their own stream, `KEYWAY_USAGE`, kept 35 days. */
export const USAGE_SUBJECT = eventSubject('used');

/**
 * The JetStream streams, their subjects and who owns each one's configuration (the others only
 * wait for it: `awaitStream`). NATS 2.9 cannot age one subject of a stream apart from another, and
 * two streams cannot share a subject, so `KEYWAY` lists its lifecycle subjects one by one.
 */
export const STREAMS = {
  /** Key, member and tenant lifecycle events, kept for good. Owner: identity. */
  keys: { name: 'KEYWAY', owner: 'identity', subjects: [...KEY_LIFECYCLE_SUBJECTS, ...MEMBER_EVENT_SUBJECTS, ...TENANT_EVENT_SUBJECTS] },
  /** `keyway.keys.used`, kept 35 days. Owner: identity. */
  usage: { name: 'KEYWAY_USAGE', owner: 'identity', subjects: [USAGE_SUBJECT], maxAgeDays: 35 },
  /** Messages no consumer can ever process, with the reason. Owner: identity. */
  dlq: { name: 'KEYWAY_DLQ', owner: 'identity', subjects: ['keyway.dlq.>'] },
  /** Each tenant's audit chain head, kept for good. Owner: audit-log. */
  auditHeads: { name: 'KEYWAY_AUDIT_HEADS', owner: 'audit-log', subjects: ['keyway.audit.heads.>'] },
  /** Contacts' and journeys' domain events. Owner: contacts. */
  domain: { name: 'KEYWAY_DOMAIN', owner: 'contacts', subjects: ['keyway.contacts.>', 'keyway.accounts.>', 'keyway.journeys.>'] },
} as const;

/** Where a durable consumer publishes what it can never process (captured by `KEYWAY_DLQ`). */
export const deadLetterSubject = (stream: string, durable: string): string => `keyway.dlq.${stream}.${durable}`;

/**
 * Core NATS (not JetStream) fan-out to every live gateway: drop these look-up ids from your cache
 * and answer (an `InvalidationAck`) once dropped. Identity answers a revoke, disable, rotation or
 * re-scope only after every live gateway has acknowledged, or a bounded wait has passed.
 */
export const GATEWAY_INVALIDATE = 'keyway.gateway.invalidate';
/** Every gateway announces itself here about once a second, so identity knows whom to wait for. */
export const GATEWAY_HEARTBEAT = 'keyway.gateway.heartbeat';

export const Rpc = {
  tenantsCreate: 'keyway.rpc.identity.tenants.create',
  tenantsList: 'keyway.rpc.identity.tenants.list',
  tenantsUpdate: 'keyway.rpc.identity.tenants.update',
  tenantsRootKey: 'keyway.rpc.identity.tenants.root-key',
  /** Operator incident tools (`/admin/v1/keys`, `/admin/v1/relay`): gateway → identity only. */
  adminKeysFind: 'keyway.rpc.identity.admin.keys.find',
  adminKeysRevoke: 'keyway.rpc.identity.admin.keys.revoke',
  adminRelayStatus: 'keyway.rpc.identity.admin.relay.status',
  /** One tenant by id (the operator's routes that act in a tenant check it exists first). */
  tenantsGet: 'keyway.rpc.identity.tenants.get',
  keysVerify: 'keyway.rpc.identity.keys.verify',
  keysCreate: 'keyway.rpc.identity.keys.create',
  keysList: 'keyway.rpc.identity.keys.list',
  keysGet: 'keyway.rpc.identity.keys.get',
  keysUpdate: 'keyway.rpc.identity.keys.update',
  keysRotate: 'keyway.rpc.identity.keys.rotate',
  keysRevoke: 'keyway.rpc.identity.keys.revoke',
  usersList: 'keyway.rpc.identity.users.list',
  usersGet: 'keyway.rpc.identity.users.get',
  usersCreate: 'keyway.rpc.identity.users.create',
  usersUpdate: 'keyway.rpc.identity.users.update',
  usersDelete: 'keyway.rpc.identity.users.delete',
  /** Sessions (`/auth/v1/session` and every request that carries one): gateway → identity only. */
  sessionsCreate: 'keyway.rpc.identity.sessions.create',
  sessionsVerify: 'keyway.rpc.identity.sessions.verify',
  sessionsDelete: 'keyway.rpc.identity.sessions.delete',
  sessionsChangePassword: 'keyway.rpc.identity.sessions.password',
  contactsList: 'keyway.rpc.contacts.contacts.list',
  contactsGet: 'keyway.rpc.contacts.contacts.get',
  contactsCreate: 'keyway.rpc.contacts.contacts.create',
  contactsUpdate: 'keyway.rpc.contacts.contacts.update',
  contactsDelete: 'keyway.rpc.contacts.contacts.delete',
  /** Service-to-service, never routed from the gateway: see SERVICE_CALLS. */
  contactsExists: 'keyway.rpc.contacts.contacts.exists',
  contactsUpsert: 'keyway.rpc.contacts.contacts.upsert',
  contactsBatch: 'keyway.rpc.contacts.contacts.batch',
  /** Empties the tenant's test-mode contacts and accounts (`DELETE /v1/test-data`). */
  contactsPurgeTestData: 'keyway.rpc.contacts.test-data.purge',
  accountsUpsert: 'keyway.rpc.contacts.accounts.upsert',
  accountsList: 'keyway.rpc.contacts.accounts.list',
  accountsGet: 'keyway.rpc.contacts.accounts.get',
  accountsCreate: 'keyway.rpc.contacts.accounts.create',
  accountsUpdate: 'keyway.rpc.contacts.accounts.update',
  accountsDelete: 'keyway.rpc.contacts.accounts.delete',
  journeysList: 'keyway.rpc.journeys.journeys.list',
  journeysGet: 'keyway.rpc.journeys.journeys.get',
  journeysCreate: 'keyway.rpc.journeys.journeys.create',
  journeysUpdate: 'keyway.rpc.journeys.journeys.update',
  journeysDelete: 'keyway.rpc.journeys.journeys.delete',
  journeysAddTouchpoint: 'keyway.rpc.journeys.journeys.touchpoints.add',
  journeysAddConversion: 'keyway.rpc.journeys.journeys.conversions.add',
  journeysListTouchpoints: 'keyway.rpc.journeys.journeys.touchpoints.list',
  /** Empties the tenant's test-mode journeys (`DELETE /v1/test-data`). */
  journeysPurgeTestData: 'keyway.rpc.journeys.test-data.purge',
  keysRotateComplete: 'keyway.rpc.identity.keys.rotate-complete',
  auditKeyLogs: 'keyway.rpc.audit.keys.logs',
  auditEventsList: 'keyway.rpc.audit.events.list',
  auditEventsVerify: 'keyway.rpc.audit.events.verify',
  keysUsage: 'keyway.rpc.audit.keys.usage',
  keysScopeReport: 'keyway.rpc.audit.keys.scope-report',
} as const;
export type RpcSubject = (typeof Rpc)[keyof typeof Rpc];

/**
 * The declared service-to-service requests: apart from these, only the gateway calls the
 * services' request subjects (DESIGN, Operations; NATS permissions are generated from this list).
 */
export const SERVICE_CALLS: ReadonlyArray<{ from: string; to: string; subject: RpcSubject; why: string }> = [
  { from: 'journeys', to: 'contacts', subject: Rpc.contactsExists, why: "a journey's contact_id must name a contact of the same tenant" },
];
