import { z } from 'zod';
import { AuditEntry, AuditEventsQuery, AuditVerification } from './audit';
import {
  AccountView,
  CONTACT_BATCH_MAX,
  ContactBatchBody,
  ContactBatchResult,
  ContactListQuery,
  ContactView,
  CreateAccountBody,
  CreateContactBody,
  ExternalIdParams,
  UpdateAccountBody,
  UpdateContactBody,
  UpsertAccountBody,
  UpsertContactBody,
} from './contacts';
import {
  ConversionBody,
  CreateJourneyBody,
  JourneyListQuery,
  JourneyView,
  TouchpointBody,
  TouchpointView,
  UpdateJourneyBody,
} from './journeys';
import { CreateKeyBody, IssuedKeyAnswer, KeyView, RevokeKeyBody, RotateKeyBody, type Scope, UpdateKeyBody } from './keys';
import { Paging, pageOf, paged, type PageQuery } from './pagination';
import { Rpc, type RpcSubject } from './subjects';
import { ScopeReport, ScopeReportQuery, UsageQuery, UsageReport } from './usage';
import { CreateUserBody, UpdateUserBody, UserView } from './users';

/** The `:id` of every id-bearing route; services validate it with this same schema. */
export const IdParams = z.object({ id: z.string().min(1).max(100) });
const NoQuery = z.strictObject({});

export interface Route {
  /** A stable name, used as the OpenAPI operationId. */
  name: string;
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Fastify path syntax. */
  path: string;
  /** Any one of these scopes is enough (all of them with `allScopes`). */
  scopes: readonly Scope[];
  /** Every scope of `scopes` is needed, not any one. */
  allScopes?: true;
  /** Only a test-mode caller (a `kw_test_` key); a live one is `403 forbidden`. */
  testModeOnly?: true;
  subject: RpcSubject;
  /**
   * Further subjects called with the same request, at once: the answer waits for every service
   * (`503` if one does not answer; the first refusal otherwise).
   */
  alsoSubjects?: readonly RpcSubject[];
  /** The service answers `{status, body}` (an upsert: `201` created, `200` replaced): the gateway answers `body` with that status. */
  statusInReply?: true;
  tag: string;
  summary: string;
  params?: z.ZodType;
  query: z.ZodType;
  body?: z.ZodType;
  response?: z.ZodType;
  status: 200 | 201 | 204;
  /** The answer carries a secret (a key): sent with `Cache-Control: no-store`. */
  secret?: true;
}

function crud(opts: {
  tag: string;
  base: string;
  read: Scope;
  write: Scope;
  view: z.ZodType;
  listQuery: z.ZodType<Pick<PageQuery, 'page' | 'pageSize' | 'after'>>;
  createBody: z.ZodType;
  updateBody: z.ZodType;
  subjects: { list: RpcSubject; get: RpcSubject; create: RpcSubject; update: RpcSubject; delete: RpcSubject };
}): Route[] {
  const { tag, base, read, write, view } = opts;
  return [
    { name: `${tag}.list`, method: 'GET', path: base, scopes: [read], subject: opts.subjects.list, tag, summary: `List ${tag}`, query: paged(opts.listQuery), response: pageOf(view), status: 200 },
    { name: `${tag}.create`, method: 'POST', path: base, scopes: [write], subject: opts.subjects.create, tag, summary: `Create one of ${tag}`, query: NoQuery, body: opts.createBody, response: view, status: 201 },
    { name: `${tag}.get`, method: 'GET', path: `${base}/:id`, scopes: [read], subject: opts.subjects.get, tag, summary: `Get one of ${tag}`, params: IdParams, query: NoQuery, response: view, status: 200 },
    { name: `${tag}.update`, method: 'PATCH', path: `${base}/:id`, scopes: [write], subject: opts.subjects.update, tag, summary: `Change the given fields of one of ${tag}`, params: IdParams, query: NoQuery, body: opts.updateBody, response: view, status: 200 },
    { name: `${tag}.delete`, method: 'DELETE', path: `${base}/:id`, scopes: [write], subject: opts.subjects.delete, tag, summary: `Delete one of ${tag}`, params: IdParams, query: NoQuery, status: 204 },
  ];
}

/**
 * The public `/v1` API routed to the services: one table drives routing, scope checks, the
 * scope × route test and the OpenAPI document. `/v1/whoami` is answered by the gateway itself.
 */
export const ROUTES: readonly Route[] = [
  { name: 'keys.list', method: 'GET', path: '/v1/keys', scopes: ['keys:read'], subject: Rpc.keysList, tag: 'keys', summary: 'List API keys', query: Paging, response: pageOf(KeyView), status: 200 },
  { name: 'keys.create', method: 'POST', path: '/v1/keys', scopes: ['keys:write'], subject: Rpc.keysCreate, tag: 'keys', summary: 'Create an API key; the secret is in this response only', query: NoQuery, body: CreateKeyBody, response: IssuedKeyAnswer, status: 201, secret: true },
  { name: 'keys.get', method: 'GET', path: '/v1/keys/:id', scopes: ['keys:read'], subject: Rpc.keysGet, tag: 'keys', summary: 'Get an API key', params: IdParams, query: NoQuery, response: KeyView, status: 200 },
  { name: 'keys.update', method: 'PATCH', path: '/v1/keys/:id', scopes: ['keys:write'], subject: Rpc.keysUpdate, tag: 'keys', summary: 'Rename, re-scope, re-limit, enable or disable a key', params: IdParams, query: NoQuery, body: UpdateKeyBody, response: KeyView, status: 200 },
  { name: 'keys.rotate', method: 'POST', path: '/v1/keys/:id/rotate', scopes: ['keys:write'], subject: Rpc.keysRotate, tag: 'keys', summary: 'Issue a new secret; the old one works until the grace period ends', params: IdParams, query: NoQuery, body: RotateKeyBody, response: IssuedKeyAnswer, status: 200, secret: true },
  { name: 'keys.revoke', method: 'POST', path: '/v1/keys/:id/revoke', scopes: ['keys:write'], subject: Rpc.keysRevoke, tag: 'keys', summary: 'Revoke a key for good', params: IdParams, query: NoQuery, body: RevokeKeyBody, response: KeyView, status: 200 },
  { name: 'keys.rotate.complete', method: 'POST', path: '/v1/keys/:id/rotate/complete', scopes: ['keys:write'], subject: Rpc.keysRotateComplete, tag: 'keys', summary: "End a rotation's grace now: every older secret stops working", params: IdParams, query: NoQuery, body: z.strictObject({}), response: KeyView, status: 200 },
  { name: 'keys.usage', method: 'GET', path: '/v1/keys/:id/usage', scopes: ['keys:read', 'audit:read'], subject: Rpc.keysUsage, tag: 'keys', summary: "A key's requests and rate-limited calls per minute, hour or day, zero-filled", params: IdParams, query: UsageQuery, response: UsageReport, status: 200 },
  { name: 'keys.scope-report', method: 'GET', path: '/v1/keys/:id/scope-report', scopes: ['keys:read'], subject: Rpc.keysScopeReport, tag: 'keys', summary: 'The scopes a key was granted, used and left unused in a period: a least-privilege suggestion', params: IdParams, query: ScopeReportQuery, response: ScopeReport, status: 200 },
  { name: 'audit.events.list', method: 'GET', path: '/v1/audit-events', scopes: ['audit:read'], subject: Rpc.auditEventsList, tag: 'audit', summary: "The tenant's audit trail, newest first", query: paged(AuditEventsQuery), response: pageOf(AuditEntry), status: 200 },
  { name: 'audit.events.verify', method: 'GET', path: '/v1/audit-events/verify', scopes: ['audit:read'], subject: Rpc.auditEventsVerify, tag: 'audit', summary: "Walk the tenant's hash chain and its published head", query: NoQuery, response: AuditVerification, status: 200 },
  { name: 'keys.logs', method: 'GET', path: '/v1/keys/:id/logs', scopes: ['keys:read', 'audit:read'], subject: Rpc.auditKeyLogs, tag: 'keys', summary: "A key's audit trail, newest first", params: IdParams, query: Paging, response: pageOf(AuditEntry), status: 200 },
  ...crud({ tag: 'users', base: '/v1/users', read: 'users:read', write: 'users:write', view: UserView, listQuery: Paging, createBody: CreateUserBody, updateBody: UpdateUserBody, subjects: { list: Rpc.usersList, get: Rpc.usersGet, create: Rpc.usersCreate, update: Rpc.usersUpdate, delete: Rpc.usersDelete } }),
  ...crud({ tag: 'contacts', base: '/v1/contacts', read: 'contacts:read', write: 'contacts:write', view: ContactView, listQuery: ContactListQuery, createBody: CreateContactBody, updateBody: UpdateContactBody, subjects: { list: Rpc.contactsList, get: Rpc.contactsGet, create: Rpc.contactsCreate, update: Rpc.contactsUpdate, delete: Rpc.contactsDelete } }),
  ...crud({ tag: 'accounts', base: '/v1/accounts', read: 'contacts:read', write: 'contacts:write', view: AccountView, listQuery: Paging, createBody: CreateAccountBody, updateBody: UpdateAccountBody, subjects: { list: Rpc.accountsList, get: Rpc.accountsGet, create: Rpc.accountsCreate, update: Rpc.accountsUpdate, delete: Rpc.accountsDelete } }),
  ...crud({ tag: 'journeys', base: '/v1/journeys', read: 'journeys:read', write: 'journeys:write', view: JourneyView, listQuery: JourneyListQuery, createBody: CreateJourneyBody, updateBody: UpdateJourneyBody, subjects: { list: Rpc.journeysList, get: Rpc.journeysGet, create: Rpc.journeysCreate, update: Rpc.journeysUpdate, delete: Rpc.journeysDelete } }),
  { name: 'journeys.touchpoints.add', method: 'POST', path: '/v1/journeys/:id/touchpoints', scopes: ['journeys:write'], subject: Rpc.journeysAddTouchpoint, tag: 'journeys', summary: 'Add a touchpoint to a journey', params: IdParams, query: NoQuery, body: TouchpointBody, response: JourneyView, status: 201 },
  { name: 'journeys.touchpoints.list', method: 'GET', path: '/v1/journeys/:id/touchpoints', scopes: ['journeys:read'], subject: Rpc.journeysListTouchpoints, tag: 'journeys', summary: "A journey's touchpoints in time order, paginated (its own answer embeds only the latest)", params: IdParams, query: Paging, response: pageOf(TouchpointView), status: 200 },
  // Upserts by the customer's own id, and the batch of them (issue 12).
  { name: 'contacts.upsert', method: 'PUT', path: '/v1/contacts/by-external-id/:external_id', scopes: ['contacts:write'], subject: Rpc.contactsUpsert, tag: 'contacts', summary: "Create or fully replace the contact with this external id (201 created, 200 replaced)", params: ExternalIdParams, query: NoQuery, body: UpsertContactBody, response: ContactView, status: 200, statusInReply: true },
  { name: 'accounts.upsert', method: 'PUT', path: '/v1/accounts/by-external-id/:external_id', scopes: ['contacts:write'], subject: Rpc.accountsUpsert, tag: 'accounts', summary: "Create or fully replace the account with this external id (201 created, 200 replaced)", params: ExternalIdParams, query: NoQuery, body: UpsertAccountBody, response: AccountView, status: 200, statusInReply: true },
  { name: 'contacts.batch', method: 'POST', path: '/v1/contacts/batch', scopes: ['contacts:write'], subject: Rpc.contactsBatch, tag: 'contacts', summary: `Up to ${CONTACT_BATCH_MAX} contact upserts by external id; each item's status and id in order (a bad item fails alone)`, query: NoQuery, body: ContactBatchBody, response: ContactBatchResult, status: 200 },
  { name: 'test-data.delete', method: 'DELETE', path: '/v1/test-data', scopes: ['contacts:write', 'journeys:write'], allScopes: true, testModeOnly: true, subject: Rpc.contactsPurgeTestData, alsoSubjects: [Rpc.journeysPurgeTestData], tag: 'test-data', summary: "Empty the tenant's test data (contacts, accounts, journeys); 204 once both services confirm. A test key only", query: NoQuery, status: 204 },
  { name: 'journeys.conversions.add', method: 'POST', path: '/v1/journeys/:id/conversions', scopes: ['journeys:write'], subject: Rpc.journeysAddConversion, tag: 'journeys', summary: 'Record a conversion on a journey', params: IdParams, query: NoQuery, body: ConversionBody, response: JourneyView, status: 201 },
];
