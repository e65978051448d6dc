import { createHash, timingSafeEqual } from 'node:crypto';
import {
  AdminRevokeKeyBody,
  CreateTenantBody,
  detailsFromZod,
  FindKeyQuery,
  IdParams,
  IssueRootKeyBody,
  KeywayError,
  Paging,
  Rpc,
  UpdateTenantBody,
  type ErrorDetail,
  type RpcRequest,
  type RpcSubject,
} from '@keyway/contracts';
import { z } from 'zod';
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import type { Gateway } from '../gateway-core';
import { noStore } from './conventions';
import { replyError } from './error-reply';
import { idempotencyOf, markReplayed } from './idempotency';
import { refusal } from './request-path';
import { requestTrace } from './request-trace';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

interface AdminRoute {
  method: 'GET' | 'POST' | 'PATCH';
  url: string;
  subject: RpcSubject;
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  status: 200 | 201;
  /** The answer carries a secret (a root key): never stored by a cache on the way. */
  secret: boolean;
  /**
   * The service acts in the tenant the path names (`:id`), e.g. audit-log's verify of its trail;
   * identity is asked first whether that tenant exists (else 404, not an empty trail "verified").
   */
  inTenant?: boolean;
}

const NoQuery = z.strictObject({});

/**
 * Who the operator is in the trails: one stable id for whoever holds KEYWAY_ADMIN_TOKEN. Not a
 * hash of the token: the trail is readable by each tenant (audit:read), and a short hash of a
 * token an operator chose would let them test guesses offline.
 */
const OPERATOR_ACTOR = { type: 'operator', id: 'operator' } as const;

/**
 * The operator's routes; identity treats every call on these subjects as the operator's. A new
 * root key revokes the old ones: the way back for a tenant locked out of its own keys.
 */
const ADMIN_ROUTES: readonly AdminRoute[] = [
  { method: 'POST', url: '/admin/v1/tenants', subject: Rpc.tenantsCreate, body: CreateTenantBody, status: 201, secret: true },
  { method: 'GET', url: '/admin/v1/tenants', subject: Rpc.tenantsList, query: Paging, status: 200, secret: false },
  { method: 'PATCH', url: '/admin/v1/tenants/:id', subject: Rpc.tenantsUpdate, params: IdParams, body: UpdateTenantBody, status: 200, secret: false },
  { method: 'POST', url: '/admin/v1/tenants/:id/root-key', subject: Rpc.tenantsRootKey, params: IdParams, body: IssueRootKeyBody, status: 201, secret: true },
  // Incident tools (DESIGN, Operations): a leaked key found by its prefix and revoked with a
  // reason; the relay's backlog, lag and leader; a tenant's audit chain walked.
  { method: 'GET', url: '/admin/v1/keys', subject: Rpc.adminKeysFind, query: FindKeyQuery, status: 200, secret: false },
  { method: 'POST', url: '/admin/v1/keys/:id/revoke', subject: Rpc.adminKeysRevoke, params: IdParams, body: AdminRevokeKeyBody, status: 200, secret: false },
  { method: 'GET', url: '/admin/v1/relay', subject: Rpc.adminRelayStatus, query: NoQuery, status: 200, secret: false },
  { method: 'GET', url: '/admin/v1/tenants/:id/audit/verify', subject: Rpc.auditEventsVerify, params: IdParams, query: NoQuery, status: 200, secret: false, inTenant: true },
];

/**
 * `/admin/v1`, for operators: the `KEYWAY_ADMIN_TOKEN` bearer token, compared in constant time
 * (both sides hashed first, so neither length nor content leaks). API keys are never accepted.
 * Without a configured token the operator API is off: 503, not open.
 */
export function registerAdminRoutes(fastify: FastifyInstance, gateway: Gateway): void {
  const token = gateway.config.KEYWAY_ADMIN_TOKEN;
  const expected = token === undefined ? undefined : digest(token);

  const operatorOnly: onRequestAsyncHookHandler = async (req) => {
    if (expected === undefined) throw new KeywayError('unavailable', 'The operator API is not configured on this gateway (KEYWAY_ADMIN_TOKEN)');
    const header = req.headers.authorization;
    const given = typeof header === 'string' && header.slice(0, 7).toLowerCase() === 'bearer ' ? header.slice(7).trim() : '';
    if (!timingSafeEqual(digest(given), expected) || given === '') {
      throw new KeywayError('unauthorized', 'Send the operator token as "Authorization: Bearer <token>"');
    }
  };

  for (const route of ADMIN_ROUTES) {
    fastify.route({
      method: route.method,
      url: route.url,
      onRequest: operatorOnly,
      errorHandler: replyError,
      handler: (req, reply) => forward(gateway, route, req, reply),
    });
  }
}

async function forward(gateway: Gateway, route: AdminRoute, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const params = (req.params ?? {}) as Record<string, string>;
  const query = (req.query ?? {}) as Record<string, unknown>;
  const details: ErrorDetail[] = [];
  for (const [schema, value] of [[route.params, params], [route.query, query], [route.body, req.body === undefined ? {} : req.body]] as const) {
    const r = schema?.safeParse(value);
    if (r && !r.success) details.push(...detailsFromZod(r.error));
  }
  if (details.length > 0) throw new KeywayError('invalid_request', 'The request is invalid', { details });
  const idempotency = idempotencyOf({ method: route.method, name: route.url }, req, params, req.body);
  const message: RpcRequest = {
    ctx: { tenant_id: route.inTenant ? params.id! : '', actor: OPERATOR_ACTOR, request_id: req.id, scopes: [], ...(idempotency && { idempotency }) },
    params: route.inTenant ? {} : params,
    query: route.query ? query : {},
    ...(route.body ? { body: req.body === undefined ? {} : req.body } : {}),
  };
  if (route.secret) noStore(reply);
  if (route.inTenant) {
    const tenant = await gateway.rpc.call(Rpc.tenantsGet, { ctx: { ...message.ctx, tenant_id: '' }, params: { id: params.id! }, query: {} }, undefined, requestTrace(req));
    if (!tenant.ok) throw refusal(tenant.error);
  }
  const r = await gateway.rpc.call(route.subject, message, undefined, requestTrace(req));
  markReplayed(reply, r.replayed);
  if (!r.ok) throw refusal(r.error);
  return reply.code(route.status).send(r.response);
}
