import * as contracts from '@keyway/contracts';
import { CreatedTenant, CreateTenantBody, ErrorBody, type ErrorCode, RateLimitWindow, ROUTES, Scope, WhoAmI, type Route } from '@keyway/contracts';
import { z } from 'zod';

/**
 * The OpenAPI 3.1 document of the gateway, generated from the route table in contracts (the same
 * table that drives routing and scope checks), so the docs cannot drift from what is served.
 * Schemas come from zod 4's own `z.toJSONSchema` (JSON Schema 2020-12, which is what OpenAPI 3.1
 * uses): request schemas as their input (defaults optional, coerced query strings), responses as
 * their output.
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
type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 429 | 500 | 503;

/** An operation, from ROUTES or one the gateway answers itself. */
interface Operation {
  name: string;
  method: Method;
  path: string;
  tag: string;
  summary: string;
  description?: string;
  /** undefined: no API key (health, admin); []: any valid key; else any one of them. */
  scopes: readonly string[] | undefined;
  security: 'apiKey' | 'admin' | 'none';
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  response?: z.ZodType;
  status: number;
  errors: ErrorStatus[];
}

const ref = (kind: string, name: string): JsonObject => ({ $ref: `#/components/${kind}/${name}` });
const schemaRef = (name: string) => ref('schemas', name);

// --- Error bodies: ErrorBody narrowed to what each status carries -------------------------------

const codeOf = (...codes: ErrorCode[]) => (codes.length === 1 ? z.literal(codes[0] as ErrorCode) : z.enum(codes as [ErrorCode, ...ErrorCode[]]));
const ERROR_SCHEMAS: Record<string, z.ZodType> = {
  ErrorBody,
  InvalidRequestError: ErrorBody.extend({ code: codeOf('invalid_request'), details: z.array(contracts.ErrorDetail) }),
  UnauthorizedError: ErrorBody.extend({
    code: codeOf('missing_key', 'invalid_key', 'key_expired', 'key_revoked', 'key_disabled', 'unauthorized'),
  }),
  InsufficientScopeError: ErrorBody.extend({ code: codeOf('insufficient_scope'), required_scope: Scope }),
  RateLimitedError: ErrorBody.extend({
    code: codeOf('rate_limited'),
    window: RateLimitWindow,
    limit: z.number().int(),
    remaining: z.number().int(),
    retry_after: z.number().int().min(1),
  }),
};
const HealthStatus = z.object({ status: z.string() }).loose();

interface ErrorSpec {
  name: string;
  description: string;
  schema: string;
  code: ErrorCode;
  example: string;
  extra?: JsonObject;
}
const ERRORS: Record<ErrorStatus, ErrorSpec> = {
  400: { name: 'InvalidRequest', description: 'The request is invalid: unknown or malformed fields, a page size above 50…', schema: 'InvalidRequestError', code: 'invalid_request', example: 'The request is invalid', extra: { details: [{ field: 'pageSize', message: 'Too big: expected number to be <=50' }] } },
  401: { name: 'Unauthorized', description: 'The key is missing, malformed, unknown, expired, revoked or disabled. The message names the key prefix, never the secret.', schema: 'UnauthorizedError', code: 'invalid_key', example: 'The API key kw_live_ab12cd34 is not valid' },
  403: { name: 'InsufficientScope', description: 'The key lacks the scope this call needs; `required_scope` names it.', schema: 'InsufficientScopeError', code: 'insufficient_scope', example: 'This key lacks the keys:write scope', extra: { required_scope: 'keys:write' } },
  404: { name: 'NotFound', description: "Not found. Another tenant's resource is also 404: existence is never revealed across tenants.", schema: 'ErrorBody', code: 'not_found', example: 'Not found' },
  409: { name: 'Conflict', description: 'Conflicts with the current state (a unique field already used, a concurrent change, a final state).', schema: 'ErrorBody', code: 'conflict', example: 'A contact with this email already exists' },
  413: { name: 'PayloadTooLarge', description: 'The body is over 1 MiB.', schema: 'ErrorBody', code: 'payload_too_large', example: 'The body is larger than 1 MiB' },
  415: { name: 'UnsupportedMediaType', description: 'A body with a `Content-Type` other than `application/json`.', schema: 'ErrorBody', code: 'unsupported_media_type', example: 'Send JSON with Content-Type: application/json' },
  429: { name: 'RateLimited', description: 'A rate-limit window of this key is full. Retry after `Retry-After` seconds.', schema: 'RateLimitedError', code: 'rate_limited', example: 'Rate limit exceeded for the per_minute window; retry in 12 s', extra: { window: 'per_minute', limit: 100, remaining: 0, retry_after: 12 } },
  500: { name: 'Internal', description: 'An unexpected error; never carries a stack trace. Quote `X-Request-Id` to support.', schema: 'ErrorBody', code: 'internal', example: 'Internal error' },
  503: { name: 'Unavailable', description: 'A service behind the gateway does not answer; retry later.', schema: 'ErrorBody', code: 'unavailable', example: 'The service is unavailable; retry later' },
};

/** Errors every `/v1` call can meet; more are added by what the route takes. */
const V1_ERRORS: ErrorStatus[] = [400, 401, 403, 429, 500, 503];

// --- Operations --------------------------------------------------------------------------------

function fromRoute(route: Route): Operation {
  const errors = new Set<ErrorStatus>(V1_ERRORS);
  if (route.params) errors.add(404);
  if (route.body) errors.add(413).add(415);
  if (route.method === 'POST' || route.method === 'PATCH') errors.add(409);
  return {
    name: route.name,
    method: route.method,
    path: route.path,
    tag: route.tag,
    summary: route.summary,
    scopes: route.scopes,
    security: 'apiKey',
    ...(route.params ? { params: route.params } : {}),
    query: route.query,
    ...(route.body ? { body: route.body } : {}),
    ...(route.response ? { response: route.response } : {}),
    status: route.status,
    errors: [...errors].sort((a, b) => a - b),
  };
}

const EXTRA_OPERATIONS: Operation[] = [
  {
    name: 'whoami',
    method: 'GET',
    path: '/v1/whoami',
    tag: 'keys',
    summary: 'The calling key: id, prefix, tenant, scopes, limits, and what remains in each rate-limit window',
    scopes: [],
    security: 'apiKey',
    response: WhoAmI,
    status: 200,
    errors: [401, 429, 500, 503],
  },
  {
    name: 'admin.tenants.create',
    method: 'POST',
    path: '/admin/v1/tenants',
    tag: 'admin',
    summary: 'Create a tenant and its root key (every scope); the secret is in this response only',
    description: 'Operators only: authenticate with the operator token (`KEYWAY_ADMIN_TOKEN`), never with an API key.',
    scopes: undefined,
    security: 'admin',
    body: CreateTenantBody,
    response: CreatedTenant,
    status: 201,
    errors: [400, 401, 413, 415, 500, 503],
  },
  { name: 'health.live', method: 'GET', path: '/health/live', tag: 'health', summary: 'The process runs', scopes: undefined, security: 'none', response: HealthStatus, status: 200, errors: [] },
  {
    name: 'health.ready',
    method: 'GET',
    path: '/health/ready',
    tag: 'health',
    summary: 'The gateway and everything it needs (NATS, the services) answer',
    scopes: undefined,
    security: 'none',
    response: HealthStatus,
    status: 200,
    errors: [503],
  },
];

export function operations(): Operation[] {
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

function toJsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonObject {
  const json = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as JsonObject;
  delete json['$schema'];
  return json;
}

function componentSchemas(registry: z.core.$ZodRegistry<{ id: string }>, io: 'input' | 'output'): Record<string, JsonObject> {
  const { schemas } = z.toJSONSchema(registry, { io, unrepresentable: 'any', target: 'draft-2020-12', uri: (id) => `#/components/schemas/${id}` });
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
  pageSize: `Items per page: default ${contracts.PAGE_SIZE_DEFAULT}, at most ${contracts.PAGE_SIZE_MAX} (above is 400).`,
  q: 'Only items whose name or email contains this text.',
};

// --- Responses and headers ---------------------------------------------------------------------

const RATE_LIMIT_HEADERS: Record<string, JsonObject> = {
  'RateLimit-Limit': ref('headers', 'RateLimit-Limit'),
  'RateLimit-Remaining': ref('headers', 'RateLimit-Remaining'),
  'RateLimit-Reset': ref('headers', 'RateLimit-Reset'),
};
const REQUEST_ID_HEADER: Record<string, JsonObject> = { 'X-Request-Id': ref('headers', 'X-Request-Id') };

/** Errors answered before the key is known carry no rate-limit headers. */
const BEFORE_KEY: ReadonlySet<ErrorStatus> = new Set([401, 413, 415, 500, 503]);

function errorResponse(status: ErrorStatus): JsonObject {
  const spec = ERRORS[status];
  const headers: Record<string, JsonObject> = { ...REQUEST_ID_HEADER, ...(BEFORE_KEY.has(status) ? {} : RATE_LIMIT_HEADERS) };
  if (status === 429) headers['Retry-After'] = ref('headers', 'Retry-After');
  return {
    description: spec.description,
    headers,
    content: { 'application/json': { schema: schemaRef(spec.schema), example: { error: spec.example, code: spec.code, ...(spec.extra ?? {}) } } },
  };
}

function scopeText(scopes: readonly string[] | undefined): string | undefined {
  if (scopes === undefined) return undefined;
  if (scopes.length === 0) return 'Any valid API key.';
  const list = scopes.map((s) => `\`${s}\``).join(' or ');
  return `Requires the scope ${list} (\`write\` implies \`read\`).`;
}

function security(op: Operation): Json[] {
  switch (op.security) {
    case 'none':
      return [];
    case 'admin':
      return [{ adminToken: [] }];
    case 'apiKey':
      // OpenAPI 3.1 lets a non-OAuth scheme list the roles it needs: each entry is one alternative.
      return op.scopes && op.scopes.length > 0 ? op.scopes.map((s) => ({ apiKey: [s] })) : [{ apiKey: [] }];
  }
}

function operationObject(op: Operation, names: SchemaNames): JsonObject {
  const base = pascal(op.name);
  const isV1 = op.path.startsWith('/v1/');
  const successHeaders = { ...REQUEST_ID_HEADER, ...(isV1 ? RATE_LIMIT_HEADERS : {}) };
  const success: JsonObject = op.response
    ? { description: 'OK', headers: successHeaders, content: { 'application/json': { schema: schemaRef(names.response(op.response, `${base}Response`)) } } }
    : { description: 'Done, no content', headers: successHeaders };

  const responses: JsonObject = { [String(op.status)]: success };
  for (const status of op.errors) responses[String(status)] = ref('responses', ERRORS[status].name);

  const body = op.body;
  const bodyJson = body ? toJsonSchema(body, 'input') : undefined;
  const scopes = scopeText(op.scopes);
  const description = [op.description, scopes].filter(Boolean).join('\n\n');

  return {
    operationId: op.name,
    tags: [op.tag],
    summary: op.summary,
    ...(description ? { description } : {}),
    ...(op.scopes !== undefined ? { 'x-required-scopes': [...op.scopes] } : {}),
    security: security(op),
    parameters: [...parameters(op.params, 'path'), ...parameters(op.query, 'query'), ...(op.security === 'none' ? [] : [ref('parameters', 'XRequestId')])],
    ...(body && bodyJson
      ? {
          requestBody: {
            required: Array.isArray(bodyJson['required']) && bodyJson['required'].length > 0,
            content: { 'application/json': { schema: schemaRef(names.request(body, `${base}Body`)) } },
          },
        }
      : {}),
    responses,
  };
}

const TAG_DESCRIPTIONS: Record<string, string> = {
  keys: 'API keys: create, scope, limit, rotate, revoke; and the calling key (`/v1/whoami`).',
  users: 'Tenant members, who sign in to the dashboard.',
  contacts: "People of the customer's product: users, leads, partners.",
  accounts: 'Companies.',
  journeys: "A visitor's path of touchpoints to one or more conversions.",
  admin: 'Operators only, with the operator token.',
  health: 'Liveness and readiness, without a key.',
};

export function buildOpenApiDocument(): OpenApiDocument {
  const names = new SchemaNames();
  const paths: OpenApiDocument['paths'] = {};
  const tags: string[] = [];
  for (const op of operations()) {
    const path = openApiPath(op.path);
    paths[path] ??= {};
    paths[path][op.method.toLowerCase()] = operationObject(op, names);
    if (!tags.includes(op.tag)) tags.push(op.tag);
  }
  const errorSchemas: Record<string, JsonObject> = {};
  for (const [name, schema] of Object.entries(ERROR_SCHEMAS)) errorSchemas[name] = toJsonSchema(schema, 'output');

  const responses: Record<string, JsonObject> = {};
  for (const status of Object.keys(ERRORS).map(Number) as ErrorStatus[]) responses[ERRORS[status].name] = errorResponse(status);

  const integerHeader = (description: string): JsonObject => ({ description, schema: { type: 'integer', minimum: 0 } });
  return {
    openapi: '3.1.0',
    info: {
      title: 'Keyway API',
      version: '1',
      description: [
        'JSON only; every call under `/v1` needs `Authorization: Bearer kw_<env>_<keyid>_<secret><checksum>`.',
        'Errors: `{"error": "<message>", "code": "<snake_case>", ...}`. Lists are paginated with `page` and `pageSize`.',
        'Rate limits per key: 60/s burst, 100/min, 5,000/h, 100,000 per UTC day unless the key overrides them; fixed windows aligned to the clock (the daily one resets at 00:00 UTC). Every `/v1` response carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` for the tightest window.',
      ].join('\n\n'),
    },
    servers: [{ url: '/' }],
    tags: tags.map((name) => ({ name, ...(TAG_DESCRIPTIONS[name] ? { description: TAG_DESCRIPTIONS[name] } : {}) })),
    paths,
    components: {
      securitySchemes: {
        apiKey: { type: 'http', scheme: 'bearer', bearerFormat: 'kw_<env>_<keyid>_<secret><checksum>', description: 'An API key: `Authorization: Bearer kw_live_…`.' },
        adminToken: { type: 'http', scheme: 'bearer', description: 'The operator token (`KEYWAY_ADMIN_TOKEN`), for `/admin/v1` only.' },
      },
      headers: {
        'RateLimit-Limit': integerHeader('The limit of the tightest window (the one with the fewest calls left).'),
        'RateLimit-Remaining': integerHeader('Calls left in that window.'),
        'RateLimit-Reset': integerHeader('Seconds until that window resets.'),
        'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'integer', minimum: 1 } },
        'X-Request-Id': { description: 'The request id: the one the client sent, or a new one.', schema: { type: 'string' } },
      },
      parameters: {
        XRequestId: { name: 'X-Request-Id', in: 'header', required: false, description: 'Echoed in the response; generated when absent.', schema: { type: 'string', maxLength: 200 } },
      },
      responses,
      schemas: { ...errorSchemas, ...componentSchemas(names.input, 'input'), ...componentSchemas(names.output, 'output') },
    },
  };
}
