import * as contracts from '@keyway/contracts';
import {
  AdminRevokeKeyBody,
  AuditVerification,
  CreatedTenant,
  ChangePasswordBody,
  CreateTenantBody,
  ErrorBody,
  ErrorCode,
  ErrorDetail,
  FREEFORM_MAX_BYTES,
  FREEFORM_MAX_DEPTH,
  FindKeyQuery,
  FoundKeys,
  IdParams,
  IssuedRootKey,
  IssueRootKeyBody,
  KeyView,
  RelayStatus,
  SessionView,
  SignInBody,
  TenantChoice,
  PAGE_SIZE_MAX,
  PAGE_WINDOW_MAX,
  pageOf,
  Paging,
  RateLimitWindow,
  ROUTES,
  Scope,
  TenantView,
  UpdateTenantBody,
  WhoAmI,
  type Route,
} from '@keyway/contracts';
import { z } from 'zod';
import { httpStatus, INTERNAL, UNAVAILABLE } from '../errors';
import { REQUEST_ID } from '../http/conventions';
import { MAX_JSON_DEPTH } from '../http/json-guard';

/**
 * The OpenAPI 3.1 document of the gateway, generated from the route table in contracts (the same
 * table that drives routing and scope checks), so the docs cannot drift from what is served.
 * Schemas come from zod 4's own `z.toJSONSchema` (JSON Schema 2020-12, which is what OpenAPI 3.1
 * uses): request schemas as their input (defaults optional, coerced query strings), responses as
 * their output. What a zod refine checks, JSON Schema cannot see: the contracts state it with
 * `.meta()` next to the refine (`uniqueItems`, a journey's `anyOf`), and the few rules that hold
 * for every schema are added here (`minProperties` where `{}` is refused, no NUL in strings).
 *
 * The document is what the server does, for every answer: each status an operation can answer
 * (with the error body narrowed to the codes that status carries), and each header, marked
 * `required` where every such answer carries it. An OpenAPI-driven fuzzer holds the server to it.
 *
 * `@asteasolutions/zod-to-openapi` would mean annotating every contract with `.openapi()`; zod's
 * own converter plus this file does the same from the schemas as they are.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

export interface OpenApiDocument {
  openapi: '3.1.0';
  info: JsonObject;
  servers: JsonObject[];
  tags: JsonObject[];
  paths: Record<string, Record<string, JsonObject>>;
  components: {
    securitySchemes: Record<string, JsonObject>;
    headers: Record<string, JsonObject>;
    parameters: Record<string, JsonObject>;
    responses: Record<string, JsonObject>;
    schemas: Record<string, JsonObject>;
  };
}

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT';
type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 429 | 500 | 503;
/** Who answers, which decides the headers: `/v1` (a key, rate limits), `/admin/v1`, `/health`. */
type Family = 'v1' | 'admin' | 'health' | 'auth';

/** An operation, from ROUTES or one the gateway answers itself. */
interface Operation {
  name: string;
  method: Method;
  path: string;
  tag: string;
  summary: string;
  description?: string;
  family: Family;
  /** undefined: no API key (health, admin); []: any valid key; else any one of them. */
  scopes: readonly string[] | undefined;
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  response?: z.ZodType;
  status: number;
  errors: ErrorStatus[];
  /** The answer carries a secret: `Cache-Control: no-store`. */
  secret?: boolean;
  /** Refusals only the owning service can tell (an id naming nothing, a date past): said on the 400. */
  semantic400?: string;
  /** The service chooses the success status among these (an upsert: 201 created, 200 replaced). */
  statuses?: readonly number[];
}

const ref = (kind: string, name: string): JsonObject => ({ $ref: `#/components/${kind}/${name}` });
const schemaRef = (name: string) => ref('schemas', name);

// --- Which statuses an operation answers -------------------------------------------------------

/** Methods whose bodies Fastify reads, so that a body too large (413) or not JSON (415) is refused. */
const BODY_METHODS: ReadonlySet<Method> = new Set(['POST', 'PATCH', 'PUT', 'DELETE']);

/**
 * Every status the gateway can answer for an operation. 400 everywhere: a Host-less HTTP/1.1
 * request or NUL in the query reaches any route. 401, 429, 500 and 503 on every `/v1` and admin
 * call; 403 where a scope is needed; 404 where an id is; 409 on writes; 413 and 415 wherever a
 * body is read, DELETE included (Fastify reads a body sent with one).
 */
function errorStatuses(family: Family, method: Method, scoped: boolean, hasParams: boolean): ErrorStatus[] {
  if (family === 'health') return [400, 500];
  // `/auth/v1/session`: 401 invalid_credentials or no session, 403 csrf_failed on sign-out, 409
  // tenant_required and 429 on sign-in.
  if (family === 'auth') return method === 'GET' ? [400, 401, 500, 503] : method === 'POST' ? [400, 401, 409, 413, 415, 429, 500, 503] : [400, 401, 403, 413, 415, 500, 503];
  const s = new Set<ErrorStatus>([400, 401, 429, 500, 503]);
  if (family === 'v1' && scoped) s.add(403);
  if (hasParams) s.add(404);
  if (method === 'POST' || method === 'PATCH' || method === 'PUT') s.add(409);
  // Idempotency-Key reused with another request.
  if (method === 'POST') s.add(422);
  if (BODY_METHODS.has(method)) s.add(413).add(415);
  return [...s].sort((a, b) => a - b);
}

const SEMANTIC_400: Record<string, string> = {
  'keys.create': 'an `expires_at` that is not in the future',
  'contacts.create': "an `account_id` that names no account of this tenant's mode",
  'contacts.update': "an `account_id` that names no account of this tenant's mode",
  'journeys.create': "a `contact_id` that names no contact of this tenant's mode",
  'journeys.update': "a `contact_id` that names no contact of this tenant's mode, or a change that leaves the journey with neither `contact_id` nor `anonymous_id`",
};

// --- Error bodies: ErrorBody narrowed to the codes each status carries ---------------------------

/** The codes the gateway answers with `status` (errors.ts's one switch decides, so this follows it). */
const codesOf = (status: number): ErrorCode[] => ErrorCode.options.filter((c) => httpStatus(c) === status);
const codeSchema = (codes: ErrorCode[]) => (codes.length === 1 ? z.literal(codes[0] as ErrorCode) : z.enum(codes as [ErrorCode, ...ErrorCode[]]));
const withCodes = (status: number) => ErrorBody.extend({ code: codeSchema(codesOf(status)) });
const OTHER_403 = codesOf(403).filter((c) => c !== 'insufficient_scope');

const ERROR_SCHEMAS: Record<string, z.ZodType> = {
  InvalidRequestError: withCodes(400).extend({ details: z.array(ErrorDetail) }),
  UnauthorizedError: withCodes(401),
  InsufficientScopeError: ErrorBody.extend({ code: z.literal('insufficient_scope'), required_scope: Scope }),
  ...(OTHER_403.length > 0 ? { ForbiddenError: ErrorBody.extend({ code: codeSchema(OTHER_403) }) } : {}),
  NotFoundError: withCodes(404),
  ConflictError: withCodes(409),
  PayloadTooLargeError: withCodes(413),
  UnsupportedMediaTypeError: withCodes(415),
  IdempotencyMismatchError: withCodes(422),
  RateLimitedError: ErrorBody.extend({
    code: z.literal('rate_limited'),
    window: RateLimitWindow,
    limit: z.number().int(),
    remaining: z.number().int(),
    retry_after: z.number().int().min(1),
  }),
  OperatorRateLimitedError: ErrorBody.extend({ code: z.literal('rate_limited'), limit: z.number().int(), retry_after: z.number().int().min(1) }),
  SignInRateLimitedError: ErrorBody.extend({ code: z.literal('rate_limited'), window: z.literal('sign_in'), retry_after: z.number().int().min(1) }),
  TenantRequiredError: ErrorBody.extend({ code: z.literal('tenant_required'), tenants: z.array(TenantChoice) }),
  InternalError: withCodes(500),
  UnavailableError: withCodes(503),
};
const HealthStatus = z.object({ status: z.string() }).loose();

interface ErrorSpec {
  name: string;
  description: string;
  /** The body schema: a component name, or several (anyOf). */
  schema: string | string[];
  example: JsonObject;
}
const ERRORS: Record<ErrorStatus, ErrorSpec> = {
  400: {
    name: 'InvalidRequest',
    description: `The request is invalid; \`details\` names each field. Malformed JSON, unknown fields, a value out of range, a \`pageSize\` above ${PAGE_SIZE_MAX}; JSON nested deeper than ${MAX_JSON_DEPTH} levels, or a free-form object (\`properties\`, \`metadata\`) over ${FREEFORM_MAX_BYTES} bytes or ${FREEFORM_MAX_DEPTH} levels; the NUL character (U+0000) in any string, key, query value or path parameter, or a lone surrogate (an unpaired \`\\ud800\`–\`\\udfff\` escape) in the body; an HTTP/1.1 request without \`Host\`.`,
    schema: 'InvalidRequestError',
    example: { error: 'The request is invalid', code: 'invalid_request', details: [{ field: 'pageSize', message: 'Too big: expected number to be <=50' }] },
  },
  401: {
    name: 'Unauthorized',
    description: 'The key (or the operator token) is missing, malformed, unknown, expired, revoked or disabled (the message names the key prefix, never the secret); or the session has ended (`unauthorized`); at sign-in, the email or the password is wrong (`invalid_credentials`, the same answer for either).',
    schema: 'UnauthorizedError',
    example: { error: 'The API key kw_live_ab12cd34 is not valid', code: 'invalid_key' },
  },
  403: {
    name: 'Forbidden',
    description: 'The key lacks a scope this call needs (`insufficient_scope`, naming `required_scope`), or asks to give what it may not (`forbidden`): a scope it lacks, a key of the other mode, limits above its own or the tenant’s ceiling, a change to a key holding a scope it lacks; or, with a session, a change without its `X-CSRF-Token` (`csrf_failed`).',
    schema: OTHER_403.length > 0 ? ['InsufficientScopeError', 'ForbiddenError'] : 'InsufficientScopeError',
    example: { error: 'This key lacks the keys:write scope', code: 'insufficient_scope', required_scope: 'keys:write' },
  },
  404: {
    name: 'NotFound',
    description: "Not found. Another tenant's resource, or one of the other mode, is also 404: existence is never revealed.",
    schema: 'NotFoundError',
    example: { error: 'Not found', code: 'not_found' },
  },
  409: {
    name: 'Conflict',
    description: 'Conflicts with the current state: a unique field already used, a concurrent change, a final state (a revoked key), a journey at its 10,000 touchpoints; or a request with the same `Idempotency-Key` still being processed (retry once it has answered).',
    schema: 'ConflictError',
    example: { error: 'A contact with this email already exists', code: 'conflict' },
  },
  413: {
    name: 'PayloadTooLarge',
    description: 'The body is over 1 MiB, or so close to it that with the request around it (tenant, key, request id, path and query) it would not fit in one message to the service: keep bodies a few hundred bytes under 1 MiB.',
    schema: 'PayloadTooLargeError',
    example: { error: 'The request body is larger than 1 MiB', code: 'payload_too_large' },
  },
  415: {
    name: 'UnsupportedMediaType',
    description: 'A body with a `Content-Type` other than `application/json`.',
    schema: 'UnsupportedMediaTypeError',
    example: { error: 'Send JSON: only Content-Type application/json is accepted', code: 'unsupported_media_type' },
  },
  422: {
    name: 'IdempotencyMismatch',
    description: 'This `Idempotency-Key` was used within 24 hours with another request (another body, route or id): use a new key for a new request.',
    schema: 'IdempotencyMismatchError',
    example: { error: 'This Idempotency-Key was used with another request: use a new key for a new request', code: 'idempotency_mismatch' },
  },
  429: {
    name: 'RateLimited',
    description: 'A rate-limit window of this key is full: retry after `Retry-After` seconds.',
    schema: 'RateLimitedError',
    example: { error: 'Rate limit exceeded for the per_minute window; retry in 12 s', code: 'rate_limited', window: 'per_minute', limit: 100, remaining: 0, retry_after: 12 },
  },
  500: {
    name: 'Internal',
    description: 'An unexpected error; never carries a stack trace. Quote `X-Request-Id` to support.',
    schema: 'InternalError',
    example: { error: INTERNAL.error, code: INTERNAL.code },
  },
  503: {
    name: 'Unavailable',
    description: 'A service behind the gateway does not answer (or the operator API is not configured); retry later.',
    schema: 'UnavailableError',
    example: { error: UNAVAILABLE.error, code: UNAVAILABLE.code },
  },
};

/** The operator API's own 429: per client address, not per key. */
const OPERATOR_429: ErrorSpec = {
  name: 'RateLimited',
  description: 'Too many calls to the operator API from this client address: retry after `Retry-After` seconds.',
  schema: 'OperatorRateLimitedError',
  example: { error: 'Too many calls to the operator API from this address; retry in 42 s', code: 'rate_limited', limit: 60, retry_after: 42 },
};
/** Sign-in's own 429 and 409: per (email, client address), and the tenants to choose from. */
const SIGN_IN_429: ErrorSpec = {
  name: 'RateLimited',
  description: 'Too many failed sign-ins for this email from this client address (the wait grows with each failure: 1 s, 2 s, 4 s … up to 15 min; another address is not held back), or too many sign-ins from this client address whatever the email (60 a minute by default): retry after `Retry-After` seconds.',
  schema: 'SignInRateLimitedError',
  example: { error: 'Too many sign-in attempts for this email from this address; retry in 4 s', code: 'rate_limited', window: 'sign_in', retry_after: 4 },
};
const SIGN_IN_409: ErrorSpec = {
  name: 'TenantRequired',
  description: 'The email and password match members of several tenants: sign in again with one of `tenants` as `tenant_id`.',
  schema: 'TenantRequiredError',
  example: { error: 'These credentials belong to members of several tenants: sign in again with one tenant_id', code: 'tenant_required', tenants: [{ id: 'ten_abc', name: 'Acme' }] },
};
const FAMILY_PREFIX: Record<Family, string> = { v1: '', admin: 'Operator', health: 'Health', auth: 'Session' };

// --- Operations --------------------------------------------------------------------------------

function fromRoute(route: Route): Operation {
  return {
    name: route.name,
    method: route.method,
    path: route.path,
    tag: route.tag,
    summary: route.summary,
    family: 'v1',
    scopes: route.scopes,
    ...(route.params ? { params: route.params } : {}),
    query: route.query,
    ...(route.body ? { body: route.body } : {}),
    ...(route.response ? { response: route.response } : {}),
    status: route.status,
    errors: errorStatuses('v1', route.method, route.scopes.length > 0, route.params !== undefined),
    ...(route.secret ? { secret: true } : {}),
    ...(SEMANTIC_400[route.name] ? { semantic400: SEMANTIC_400[route.name] } : {}),
    ...(route.statusInReply ? { statuses: [201, 200] } : {}),
    ...(route.allScopes || route.testModeOnly ? { description: routeRules(route) } : {}),
  };
}

/** What a row's flags add to its description: every scope needed, a test key only. */
function routeRules(route: Route): string {
  return [
    route.allScopes ? `Needs every one of these scopes: ${route.scopes.map((s) => `\`${s}\``).join(', ')}.` : '',
    route.testModeOnly ? 'Only with a test key (`kw_test_…`); a live key gets `403 forbidden`.' : '',
    route.alsoSubjects ? 'Answers once every service concerned has confirmed; `503` when one does not answer (safe to repeat).' : '',
  ]
    .filter(Boolean)
    .join(' ');
}

const SESSION_NOTE =
  'Dashboard sessions: the cookie `kw_session` (HttpOnly, SameSite=Strict, Secure unless the gateway is configured for local http, Path=/; `__Host-kw_session` on a gateway configured with SESSION_COOKIE_HOST_PREFIX) is set at sign-in; every `/v1` call may then send it instead of a key, with `X-CSRF-Token` on every method but GET and HEAD (else `403 csrf_failed`). A session ends 30 minutes after its last use or 12 hours after sign-in. Every answer here is `Cache-Control: no-store`.';

function session(op: Omit<Operation, 'family' | 'scopes' | 'tag' | 'errors' | 'description'>): Operation {
  return { ...op, tag: 'sessions', description: SESSION_NOTE, family: 'auth', scopes: undefined, secret: true, errors: errorStatuses('auth', op.method, false, false) };
}

const SESSION_OPERATIONS: Operation[] = [
  session({
    name: 'sessions.create',
    method: 'POST',
    path: '/auth/v1/session',
    summary: 'Sign in with email and password: sets the session cookie, answers the member, tenant, role and CSRF token. A wrong email or password is the same 401 invalid_credentials',
    body: SignInBody,
    response: SessionView,
    status: 200,
  }),
  session({ name: 'sessions.get', method: 'GET', path: '/auth/v1/session', summary: 'The signed-in member, tenant, role and the CSRF token again (after a reload)', response: SessionView, status: 200 }),
  session({ name: 'sessions.delete', method: 'DELETE', path: '/auth/v1/session', summary: 'Sign out: the session ends on the server (at every gateway) and the cookie is cleared', status: 204 }),
  session({
    name: 'sessions.password',
    method: 'POST',
    path: '/auth/v1/password',
    summary: "The signed-in member's own password, with the current one (any role; needs X-CSRF-Token). A wrong current password is 403 forbidden and counts like a failed sign-in (then 429); the member's other sessions end, this one goes on",
    body: ChangePasswordBody,
    status: 204,
  }),
];

const OPERATOR_ONLY = 'Operators only: authenticate with the operator token (`KEYWAY_ADMIN_TOKEN`), never with an API key. Rate-limited per client address.';

function admin(op: Omit<Operation, 'family' | 'scopes' | 'tag' | 'errors' | 'description'>): Operation {
  return { ...op, tag: 'admin', description: OPERATOR_ONLY, family: 'admin', scopes: undefined, errors: errorStatuses('admin', op.method, false, op.params !== undefined) };
}

/** One schema object, so the document names it once (`TenantViewPage`). */
const TENANT_PAGE = pageOf(TenantView);

const EXTRA_OPERATIONS: Operation[] = [
  {
    name: 'whoami',
    method: 'GET',
    path: '/v1/whoami',
    tag: 'keys',
    summary: 'The calling key: id, prefix, tenant, scopes, limits, and what remains in each rate-limit window',
    family: 'v1',
    scopes: [],
    response: WhoAmI,
    status: 200,
    errors: errorStatuses('v1', 'GET', false, false),
  },
  admin({
    name: 'admin.tenants.create',
    method: 'POST',
    path: '/admin/v1/tenants',
    summary: 'Create a tenant and its root key (every scope); the secret is in this response only',
    body: CreateTenantBody,
    response: CreatedTenant,
    status: 201,
    secret: true,
  }),
  admin({
    name: 'admin.tenants.list',
    method: 'GET',
    path: '/admin/v1/tenants',
    summary: 'List the tenants, newest first (paginated)',
    query: Paging,
    response: TENANT_PAGE,
    status: 200,
  }),
  admin({
    name: 'admin.tenants.update',
    method: 'PATCH',
    path: '/admin/v1/tenants/:id',
    summary: "Rename a tenant or set its rate-limit ceiling (the most any of its keys may be given)",
    params: IdParams,
    body: UpdateTenantBody,
    response: TenantView,
    status: 200,
  }),
  admin({
    name: 'admin.tenants.rootKey',
    method: 'POST',
    path: '/admin/v1/tenants/:id/root-key',
    summary: "Issue a new root key of one mode (shown once) and revoke that mode's old root keys: the way back from a lock-out",
    params: IdParams,
    body: IssueRootKeyBody,
    response: IssuedRootKey,
    status: 201,
    secret: true,
  }),
  admin({
    name: 'admin.keys.find',
    method: 'GET',
    path: '/admin/v1/keys',
    summary: "Find a key by its public prefix, in any tenant (a leak someone reported): its id, tenant, name, status, scopes, creation and last use; never a secret. A rotated-away prefix finds its key too",
    query: FindKeyQuery,
    response: FoundKeys,
    status: 200,
  }),
  admin({
    name: 'admin.keys.revoke',
    method: 'POST',
    path: '/admin/v1/keys/:id/revoke',
    summary: "Revoke any tenant's key, saying why (e.g. `leaked`): like the tenant's own revoke, every gateway has dropped the key before this answers; the tenant's trail shows the operator and the reason",
    params: IdParams,
    body: AdminRevokeKeyBody,
    response: KeyView,
    status: 200,
  }),
  admin({
    name: 'admin.relay.status',
    method: 'GET',
    path: '/admin/v1/relay',
    summary: "Identity's outbox relays: events waiting for JetStream, how long the oldest has waited, and which replica holds the relay's lock",
    response: RelayStatus,
    status: 200,
  }),
  admin({
    name: 'admin.tenants.audit.verify',
    method: 'GET',
    path: '/admin/v1/tenants/:id/audit/verify',
    summary: "Walk a tenant's audit hash chain against its published head (what the tenant's own `GET /v1/audit-events/verify` answers, both modes)",
    params: IdParams,
    response: AuditVerification,
    status: 200,
  }),
  ...SESSION_OPERATIONS,
  { name: 'health.live', method: 'GET', path: '/health/live', tag: 'health', summary: 'The process runs', family: 'health', scopes: undefined, response: HealthStatus, status: 200, errors: errorStatuses('health', 'GET', false, false) },
  {
    name: 'health.ready',
    method: 'GET',
    path: '/health/ready',
    tag: 'health',
    summary: 'The gateway and everything it needs (NATS, the services) answer',
    family: 'health',
    scopes: undefined,
    response: HealthStatus,
    status: 200,
    errors: [...errorStatuses('health', 'GET', false, false), 503],
  },
];

function operations(): Operation[] {
  return [...ROUTES.map(fromRoute), ...EXTRA_OPERATIONS];
}

/** `/v1/keys/:id/logs` → `/v1/keys/{id}/logs`. */
export const openApiPath = (fastifyPath: string): string => fastifyPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

// --- Schemas -----------------------------------------------------------------------------------

/** The exported name of each contract schema, so components read `KeyView`, not `KeysGetResponse`. */
function contractNames(): Map<z.ZodType, string> {
  const names = new Map<z.ZodType, string>();
  for (const [name, value] of Object.entries(contracts)) {
    if (value instanceof z.ZodType && !names.has(value)) names.set(value, name);
  }
  return names;
}

const pascal = (name: string): string =>
  name
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((p) => p.charAt(0).toUpperCase() + p.slice(1))
    .join('');

/** A list response is `pageOf(View)`: its `data` items tell its name. */
function pageItem(schema: z.ZodType): z.ZodType | undefined {
  if (!(schema instanceof z.ZodObject)) return undefined;
  const data = schema.shape['data'];
  return data instanceof z.ZodArray && 'hasMore' in schema.shape ? (data.element as z.ZodType) : undefined;
}

class SchemaNames {
  private readonly known = contractNames().set(HealthStatus, 'HealthStatus');
  readonly input = z.registry<{ id: string }>();
  readonly output = z.registry<{ id: string }>();
  private readonly used = new Set<string>();

  private add(registry: z.core.$ZodRegistry<{ id: string }>, schema: z.ZodType, wanted: string): string {
    const existing = registry.get(schema);
    if (existing) return existing.id;
    let id = wanted;
    for (let n = 2; this.used.has(id); n++) id = `${wanted}${n}`;
    this.used.add(id);
    registry.add(schema, { id });
    return id;
  }

  request(schema: z.ZodType, fallback: string): string {
    const name = this.known.get(schema) ?? fallback;
    return this.add(this.input, schema, this.output.has(schema) || this.used.has(name) ? `${name}Input` : name);
  }

  response(schema: z.ZodType, fallback: string): string {
    const item = pageItem(schema);
    const itemName = item ? this.response(item, `${fallback}Item`) : undefined;
    return this.add(this.output, schema, this.known.get(schema) ?? (itemName ? `${itemName}Page` : fallback));
  }
}

/** Whether zod refuses `{}` for this schema (a refine JSON Schema cannot see, say). */
function refusesEmptyObject(schema: z.core.$ZodType): boolean {
  try {
    return !z.safeParse(schema, {}).success;
  } catch {
    return false;
  }
}

/**
 * Any string the gateway lets through: no NUL, and no lone UTF-16 surrogate (json-guard.ts;
 * Postgres stores neither). Each character is anything else or a well-formed surrogate pair,
 * which reads the same with and without the regex `u` flag.
 */
const STORABLE_CHAR = '(?:[^\\u0000\\ud800-\\udfff]|[\\ud800-\\udbff][\\udc00-\\udfff])';
const STORABLE = `^${STORABLE_CHAR}*$`;
/** At least one character that is not white space, and nothing Postgres cannot store. */
const NOT_BLANK_STORABLE = `^${STORABLE_CHAR}*(?:[^\\s\\u0000\\ud800-\\udfff]|[\\ud800-\\udbff][\\udc00-\\udfff])${STORABLE_CHAR}*$`;

/**
 * What a request schema says beyond zod's converter, rules that hold for every schema alike:
 * - an object that refuses `{}` and requires no field (a PATCH body's "give at least one field"
 *   refine) has `minProperties: 1`;
 * - a string with a pattern has no `format` beside it where the two disagree: zod's email pattern
 *   is the rule the services apply, and `format: email` (RFC 5321) accepts addresses it refuses;
 *   `date-time` stays, since zod's pattern only narrows it;
 * - a string with neither pattern nor enum refuses NUL and lone surrogates (the gateway's rule).
 */
function requestOverride(ctx: { zodSchema: z.core.$ZodType; jsonSchema: z.core.JSONSchema.BaseSchema }): void {
  const json = ctx.jsonSchema;
  if (json.type === 'object' && json.required === undefined && json.anyOf === undefined && json.minProperties === undefined && refusesEmptyObject(ctx.zodSchema)) {
    json.minProperties = 1;
  }
  if (json.type === 'string') {
    if (json.format === 'email' && json.pattern !== undefined) delete json.format;
    if (json.pattern === undefined && json.enum === undefined && json.const === undefined && json.format === undefined) json.pattern = STORABLE;
    // Names must not be blank (zod's `\S`, checked before trimming): one pattern says both rules,
    // without a lookahead, which generators of samples from patterns (fast-check's) do not take.
    else if (json.pattern === '\\S') json.pattern = NOT_BLANK_STORABLE;
  }
}

const converterOptions = (io: 'input' | 'output') =>
  ({ io, unrepresentable: 'any', target: 'draft-2020-12', ...(io === 'input' ? { override: requestOverride } : {}) }) as const;

function toJsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonObject {
  const json = z.toJSONSchema(schema, converterOptions(io)) as JsonObject;
  delete json['$schema'];
  return json;
}

function componentSchemas(registry: z.core.$ZodRegistry<{ id: string }>, io: 'input' | 'output'): Record<string, JsonObject> {
  const { schemas } = z.toJSONSchema(registry, { ...converterOptions(io), uri: (id) => `#/components/schemas/${id}` });
  const out: Record<string, JsonObject> = {};
  for (const [id, schema] of Object.entries(schemas)) {
    const clean = { ...(schema as JsonObject) };
    delete clean['$schema'];
    delete clean['$id'];
    out[id] = clean;
  }
  return out;
}

/** Query or path parameters from an object schema: one parameter per property. */
function parameters(schema: z.ZodType | undefined, where: 'query' | 'path'): JsonObject[] {
  if (!schema) return [];
  const json = toJsonSchema(schema, 'input');
  const properties = (json['properties'] ?? {}) as Record<string, JsonObject>;
  const required = new Set((json['required'] ?? []) as string[]);
  return Object.entries(properties).map(([name, propertySchema]) => {
    const description = PARAMETER_DESCRIPTIONS[name];
    return {
      name,
      in: where,
      required: where === 'path' || required.has(name),
      ...(description ? { description } : {}),
      schema: propertySchema,
    };
  });
}

const PARAMETER_DESCRIPTIONS: Record<string, string> = {
  id: 'The resource id.',
  page: 'Page number, from 1.',
  pageSize: `Items per page: default ${contracts.PAGE_SIZE_DEFAULT}, at most ${PAGE_SIZE_MAX} (above is 400).`,
  q: 'Only items whose name or email contains this text.',
  after: 'The `next_cursor` of the page before: the page after it, at the same cost however deep (no `page` with it). Deeper than `page × pageSize` = 10,000, only `after` goes.',
};

// --- Responses and headers ---------------------------------------------------------------------

const RATE_LIMIT_HEADER_NAMES = ['RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset', 'RateLimit-Policy', 'RateLimit'] as const;
const headerRefs = (...names: string[]): Record<string, JsonObject> => Object.fromEntries(names.map((n) => [n, ref('headers', n)]));

/** On every answer of the gateway, errors and 404s included. */
const EVERY_ANSWER = headerRefs('X-Request-Id', 'X-Content-Type-Options');

const HEADERS: Record<string, JsonObject> = {
  'X-Request-Id': {
    description: `The request id: the client's \`X-Request-Id\` when it matched \`${REQUEST_ID.source}\`, else a new \`req_…\` id. Quote it to support.`,
    required: true,
    schema: { type: 'string', pattern: REQUEST_ID.source },
  },
  'X-Content-Type-Options': { description: 'Browsers must not guess another type than the one sent.', required: true, schema: { type: 'string', enum: ['nosniff'] } },
  'Cache-Control': { description: 'The answer carries a secret: no cache on the way may keep it.', required: true, schema: { type: 'string', enum: ['no-store'] } },
  'Idempotent-Replayed': { description: 'Present (`true`) when this is the first answer to the same `Idempotency-Key`, replayed.', required: false, schema: { type: 'string', enum: ['true'] } },
  'Retry-After': { description: 'Seconds to wait before retrying.', required: true, schema: { type: 'integer', minimum: 1 } },
  'RateLimit-Limit': { description: 'The limit of the tightest window: the one with the fewest calls left (of those, the one that frees last).', required: true, schema: { type: 'integer', minimum: 0 } },
  'RateLimit-Remaining': { description: 'Calls left in that window.', required: true, schema: { type: 'integer', minimum: 0 } },
  'RateLimit-Reset': { description: 'Seconds until that window admits calls again.', required: true, schema: { type: 'integer', minimum: 0 } },
  'RateLimit-Policy': {
    description:
      'The key\'s limits, one item per window, shortest first (draft-ietf-httpapi-ratelimit-headers, a Structured Field list): `"burst_per_second";q=60;w=1, "per_minute";q=100;w=60, "per_hour";q=5000;w=3600, "daily";q=100000;w=86400`; `q` the limit, `w` the window in seconds.',
    required: true,
    schema: { type: 'string' },
  },
  RateLimit: {
    description: 'What is left of each window, in the same order: `"burst_per_second";r=59;t=1, …`; `r` the calls left, `t` the seconds within which no more than `r` calls can pass (daily: until 00:00 UTC).',
    required: true,
    schema: { type: 'string' },
  },
};

/** The same headers, present only when the key was known and counted before the error. */
const optional = (name: string): JsonObject => {
  const { required: _required, ...rest } = HEADERS[name] as JsonObject & { required?: Json };
  return { ...rest, description: `${String(rest['description'])} Present when the call was counted against the key.` };
};

function errorHeaders(family: Family, status: ErrorStatus): Record<string, JsonObject> {
  const headers: Record<string, JsonObject> = { ...EVERY_ANSWER };
  if (family === 'v1' && status !== 401) {
    for (const name of RATE_LIMIT_HEADER_NAMES) headers[name] = status === 429 ? ref('headers', name) : optional(name);
  }
  if (status === 429) headers['Retry-After'] = ref('headers', 'Retry-After');
  return headers;
}

function errorSpec(family: Family, status: ErrorStatus): ErrorSpec {
  if (family === 'auth' && status === 429) return SIGN_IN_429;
  if (family === 'auth' && status === 409) return SIGN_IN_409;
  return family === 'admin' && status === 429 ? OPERATOR_429 : ERRORS[status];
}

function errorResponse(family: Family, status: ErrorStatus, extra?: string): JsonObject {
  const spec = errorSpec(family, status);
  const schema: JsonObject = typeof spec.schema === 'string' ? schemaRef(spec.schema) : { anyOf: spec.schema.map(schemaRef) };
  return {
    description: extra ? `${spec.description} Also ${extra}.` : spec.description,
    headers: errorHeaders(family, status),
    content: { 'application/json': { schema, example: spec.example } },
  };
}

const responseName = (family: Family, status: ErrorStatus): string => `${FAMILY_PREFIX[family]}${errorSpec(family, status).name}`;

function scopeText(scopes: readonly string[] | undefined): string | undefined {
  if (scopes === undefined) return undefined;
  if (scopes.length === 0) return 'Any valid API key.';
  const list = scopes.map((s) => `\`${s}\``).join(' or ');
  return `Requires the scope ${list} (\`write\` implies \`read\`).`;
}

function security(op: Operation): Json[] {
  switch (op.family) {
    case 'health':
      return [];
    case 'admin':
      return [{ adminToken: [] }];
    case 'auth':
      return op.method === 'POST' ? [] : [{ sessionCookie: [] }];
    case 'v1':
      // OpenAPI 3.1 lets a non-OAuth scheme list the roles it needs: each entry is one alternative.
      // A session works in place of a key (the role's scopes), except on whoami, which describes a key.
      return [
        ...(op.scopes && op.scopes.length > 0 ? op.scopes.map((s) => ({ apiKey: [s] })) : [{ apiKey: [] }]),
        ...(op.name === 'whoami' ? [] : [{ sessionCookie: op.scopes ? [...op.scopes] : [] }]),
      ];
  }
}

function operationObject(op: Operation, names: SchemaNames, usedResponses: Set<string>): JsonObject {
  const base = pascal(op.name);
  const successHeaders: Record<string, JsonObject> = {
    ...EVERY_ANSWER,
    ...(op.family === 'v1' ? headerRefs(...RATE_LIMIT_HEADER_NAMES) : {}),
    ...(op.secret ? headerRefs('Cache-Control') : {}),
    ...(op.method === 'POST' && op.family !== 'health' && op.family !== 'auth' ? headerRefs('Idempotent-Replayed') : {}),
  };
  const success: JsonObject = op.response
    ? { description: 'OK', headers: successHeaders, content: { 'application/json': { schema: schemaRef(names.response(op.response, `${base}Response`)) } } }
    : { description: 'Done, no content', headers: successHeaders };

  const responses: JsonObject = Object.fromEntries((op.statuses ?? [op.status]).map((status) => [String(status), success]));
  if (op.statuses) success['description'] = 'Created (201) or replaced (200)';
  for (const status of op.errors) {
    if (status === 400 && op.semantic400) {
      responses['400'] = errorResponse(op.family, 400, op.semantic400);
      continue;
    }
    const name = responseName(op.family, status);
    usedResponses.add(`${op.family}:${status}`);
    responses[String(status)] = ref('responses', name);
  }

  const body = op.body;
  const scopes = scopeText(op.scopes);
  const description = [op.description, scopes].filter(Boolean).join('\n\n');

  return {
    operationId: op.name,
    tags: [op.tag],
    summary: op.summary,
    ...(description ? { description } : {}),
    ...(op.scopes !== undefined ? { 'x-required-scopes': [...op.scopes] } : {}),
    security: security(op),
    ...(op.family === 'admin' ? { servers: ADMIN_SERVERS } : {}),
    parameters: [
      ...parameters(op.params, 'path'),
      ...parameters(op.query, 'query'),
      ref('parameters', 'XRequestId'),
      ...(op.method === 'POST' && op.family !== 'health' && op.family !== 'auth' ? [ref('parameters', 'IdempotencyKey')] : []),
      ...(op.family === 'v1' && op.name !== 'whoami' ? [ref('parameters', 'KeywayMode')] : []),
      ...(op.method !== 'GET' && op.family !== 'health' && op.family !== 'admin' && op.name !== 'sessions.create' ? [ref('parameters', 'XCsrfToken')] : []),
    ],
    ...(body
      ? {
          requestBody: {
            // Without a body the gateway validates `{}`: the body is required exactly when `{}` is refused.
            required: refusesEmptyObject(body),
            content: { 'application/json': { schema: schemaRef(names.request(body, `${base}Body`)) } },
          },
        }
      : {}),
    responses,
  };
}

/**
 * Where the operator API answers: the gateway's admin listener (`ADMIN_PORT`), never the public
 * port (there `/admin/v1` is 404). Said on each admin operation (an operation-level `servers`),
 * so one document still describes the whole gateway and a client generated from it has them all.
 */
const ADMIN_SERVERS: Json[] = [
  {
    url: '{admin}',
    description: "The gateway's admin listener (ADMIN_PORT, default 3100; loopback in `npm start`, its own Service in k8s). `/admin/v1` answers 404 on the public port.",
    variables: { admin: { default: 'http://127.0.0.1:3100', description: 'The admin listener\'s base URL' } },
  },
];

const TAG_DESCRIPTIONS: Record<string, string> = {
  keys: 'API keys: create, scope, limit, rotate, revoke; and the calling key (`/v1/whoami`).',
  users: 'Tenant members, who sign in to the dashboard.',
  contacts: "People of the customer's product: users, leads, partners.",
  accounts: 'Companies.',
  journeys: "A visitor's path of touchpoints to one or more conversions.",
  'test-data': "Test mode: empty the tenant's test data at once.",
  audit: "The tenant's audit trail: every key lifecycle event, newest first, and the walk of its hash chain.",
  admin: "Operators only, with the operator token, on the gateway's admin listener (`ADMIN_PORT`, default 3100): `/admin/v1` answers 404 on the public port.",
  sessions: "Tenant members' dashboard sessions: sign in, read the session and its CSRF token, sign out.",
  health: 'Liveness and readiness, without a key.',
};

export function buildOpenApiDocument(): OpenApiDocument {
  const names = new SchemaNames();
  const paths: OpenApiDocument['paths'] = {};
  const tags: string[] = [];
  const usedResponses = new Set<string>();
  for (const op of operations()) {
    const path = openApiPath(op.path);
    paths[path] ??= {};
    paths[path][op.method.toLowerCase()] = operationObject(op, names, usedResponses);
    if (!tags.includes(op.tag)) tags.push(op.tag);
  }
  const errorSchemas: Record<string, JsonObject> = {};
  for (const [name, schema] of Object.entries(ERROR_SCHEMAS)) errorSchemas[name] = toJsonSchema(schema, 'output');

  const responses: Record<string, JsonObject> = {};
  for (const used of usedResponses) {
    const [family, status] = used.split(':') as [Family, string];
    responses[responseName(family, Number(status) as ErrorStatus)] = errorResponse(family, Number(status) as ErrorStatus);
  }

  return {
    openapi: '3.1.0',
    info: {
      title: 'Keyway API',
      version: '1',
      description: [
        'JSON only; every call under `/v1` needs `Authorization: Bearer kw_<env>_<keyid>_<secret><checksum>`.',
        'Errors: `{"error": "<message>", "code": "<snake_case>", ...}`; a 400 names each field in `details: [{field, message}]`. Every answer carries `X-Request-Id` and `X-Content-Type-Options: nosniff`; an answer carrying a secret, `Cache-Control: no-store`.',
        `Sizes: a body of at most 1 MiB, a few hundred bytes less in practice (it must fit in one message to the service with the request around it; else 413); JSON nested at most ${MAX_JSON_DEPTH} levels, and a free-form object (\`properties\`, \`metadata\`) at most ${FREEFORM_MAX_DEPTH} levels deep and ${FREEFORM_MAX_BYTES} bytes as JSON; no string, key, query value or path parameter may contain NUL (U+0000), nor a string or key of the body a lone surrogate. Lists are paginated with \`page\` and \`pageSize\` (at most ${PAGE_SIZE_MAX}; \`page × pageSize\` at most ${PAGE_WINDOW_MAX}, beyond it 400 naming \`after\`), or walked with \`after=<next_cursor>\`: every list answer carries \`next_cursor\` (null on the last page); \`hasMore\` is exact, \`total\` is exact up to 1,000 items and may be an estimate above, flagged \`total_is_estimate: true\`.`,
        'Idempotency: every `POST` accepts `Idempotency-Key` (8–255 printable ASCII characters): the same key and request within 24 hours answers the first answer again with `Idempotent-Replayed: true`; another request with that key is `422 idempotency_mismatch`, and `409 conflict` while the first call still runs. Keys are scoped to the tenant and mode.',
        'Rate limits per key: 60/s burst, 100/min and 5,000/h, all three sliding (no boundary lets twice a limit through), and 100,000 per UTC day (a quota that resets at 00:00 UTC), unless the key overrides them within its tenant\'s ceiling. Every `/v1` response carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` for the tightest window, and `RateLimit-Policy` and `RateLimit` with one item per window. The operator API is limited per client address.',
      ].join('\n\n'),
    },
    servers: [{ url: '/' }],
    tags: tags.map((name) => ({ name, ...(TAG_DESCRIPTIONS[name] ? { description: TAG_DESCRIPTIONS[name] } : {}) })),
    paths,
    components: {
      securitySchemes: {
        apiKey: { type: 'http', scheme: 'bearer', bearerFormat: 'kw_<env>_<keyid>_<secret><checksum>', description: 'An API key: `Authorization: Bearer kw_live_…`.' },
        adminToken: { type: 'http', scheme: 'bearer', description: 'The operator token (`KEYWAY_ADMIN_TOKEN`), for `/admin/v1` only.' },
        sessionCookie: {
          type: 'apiKey',
          in: 'cookie',
          name: 'kw_session',
          description: "A signed-in member's session (`POST /auth/v1/session`), with the role's scopes. A Bearer key, when sent too, decides alone. Changes also need `X-CSRF-Token` (else `403 csrf_failed`).",
        },
      },
      headers: HEADERS,
      parameters: {
        XRequestId: {
          name: 'X-Request-Id',
          in: 'header',
          required: false,
          description: `Your id for this request, echoed in the answer's \`X-Request-Id\` when it matches \`${REQUEST_ID.source}\`. Any other value is not refused: it is replaced by a new \`req_…\` id, as a missing one is.`,
          schema: { type: 'string', pattern: REQUEST_ID.source },
        },
        KeywayMode: {
          name: 'Keyway-Mode',
          in: 'header',
          required: false,
          description: 'With a session only: `test` acts on the test mode (test keys and data), `live` (the default) on live. A key acts in its own mode and ignores it.',
          schema: { type: 'string', enum: ['live', 'test'] },
        },
        XCsrfToken: {
          name: 'X-CSRF-Token',
          in: 'header',
          required: false,
          description: "With a session: its CSRF token (from sign-in or `GET /auth/v1/session`), required on every method but GET and HEAD; missing or wrong: `403 csrf_failed`. Not needed with a key.",
          schema: { type: 'string' },
        },
        IdempotencyKey: {
          name: 'Idempotency-Key',
          in: 'header',
          required: false,
          description:
            'Makes a retry safe: the same key with the same request within 24 hours answers what the first call answered (with `Idempotent-Replayed: true`, a stored 400/403/404 included), and never does the work twice. Another request with the key: `422 idempotency_mismatch`; while the first call runs: `409 conflict`. Scoped to your tenant and mode. A replayed key creation or rotation answers the same key with `key: null`: a secret is shown once. A 409 or 5xx is not kept: retrying runs the call again.',
          schema: { type: 'string', minLength: 8, maxLength: 255, pattern: '^[\\x20-\\x7e]+$' },
        },
      },
      responses,
      schemas: { ...errorSchemas, ...componentSchemas(names.input, 'input'), ...componentSchemas(names.output, 'output') },
    },
  };
}
