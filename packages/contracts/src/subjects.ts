import type { KeyEventType } from './events';

/**
 * Every NATS subject, in one table. Event subjects (`keyway.keys.>`, captured by the JetStream
 * stream) and request subjects (`keyway.rpc.>`) never overlap: a stream that captured a request
 * subject would answer the request itself.
 */
export const EVENT_SUBJECTS = 'keyway.keys.>';
export const eventSubject = (type: KeyEventType): string => `keyway.keys.${type}`;

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
  tenantsUpdate: 'keyway.rpc.identity.tenants.update',
  tenantsRootKey: 'keyway.rpc.identity.tenants.root-key',
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
  contactsList: 'keyway.rpc.contacts.contacts.list',
  contactsGet: 'keyway.rpc.contacts.contacts.get',
  contactsCreate: 'keyway.rpc.contacts.contacts.create',
  contactsUpdate: 'keyway.rpc.contacts.contacts.update',
  contactsDelete: 'keyway.rpc.contacts.contacts.delete',
  /** Service-to-service, never routed from the gateway: see SERVICE_CALLS. */
  contactsExists: 'keyway.rpc.contacts.contacts.exists',
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
  auditKeyLogs: 'keyway.rpc.audit.keys.logs',
} as const;
export type RpcSubject = (typeof Rpc)[keyof typeof Rpc];

/**
 * The declared service-to-service requests: apart from these, only the gateway calls the
 * services' request subjects (DESIGN, Operations; NATS permissions are generated from this list).
 */
export const SERVICE_CALLS: ReadonlyArray<{ from: string; to: string; subject: RpcSubject; why: string }> = [
  { from: 'journeys', to: 'contacts', subject: Rpc.contactsExists, why: "a journey's contact_id must name a contact of the same tenant" },
];
