import { createHash, timingSafeEqual } from 'node:crypto';
import { CreateTenantBody, detailsFromZod, IdParams, IssueRootKeyBody, Rpc, UpdateTenantBody, type ErrorDetail, type RpcRequest, type RpcSubject } from '@keyway/contracts';
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import type { z } from 'zod';
import type { GatewayCore } from '../gateway-core';
import { routeErrorHandler, sendError } from './error-reply';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

interface AdminRoute {
  method: 'POST' | 'PATCH';
  url: string;
  subject: RpcSubject;
  params?: z.ZodType;
  body?: z.ZodType;
  status: 200 | 201;
  /** The answer carries a secret (a root key): never stored by a cache on the way. */
  secret: boolean;
}

/**
 * The operator's routes; identity treats every call on these subjects as the operator's. A new
 * root key revokes the old ones: the way back for a tenant locked out of its own keys.
 */
const ADMIN_ROUTES: readonly AdminRoute[] = [
  { method: 'POST', url: '/admin/v1/tenants', subject: Rpc.tenantsCreate, body: CreateTenantBody, status: 201, secret: true },
  { method: 'PATCH', url: '/admin/v1/tenants/:id', subject: Rpc.tenantsUpdate, params: IdParams, body: UpdateTenantBody, status: 200, secret: false },
  { method: 'POST', url: '/admin/v1/tenants/:id/root-key', subject: Rpc.tenantsRootKey, params: IdParams, body: IssueRootKeyBody, status: 201, secret: true },
];

/**
 * `/admin/v1`, for operators: the `KEYWAY_ADMIN_TOKEN` bearer token, compared in constant time
 * (both sides hashed first, so neither length nor content leaks). API keys are never accepted.
 * Without a configured token the operator API is off: 503, not open.
 */
export function registerAdminRoutes(fastify: FastifyInstance, core: GatewayCore): void {
  const token = core.config.KEYWAY_ADMIN_TOKEN;
  const expected = token === undefined ? undefined : digest(token);

  const operatorOnly: onRequestAsyncHookHandler = async (req, reply) => {
    if (expected === undefined) {
      return sendError(reply, { error: 'The operator API is not configured on this gateway (KEYWAY_ADMIN_TOKEN)', code: 'unavailable' });
    }
    const header = req.headers.authorization;
    const given = typeof header === 'string' && header.slice(0, 7).toLowerCase() === 'bearer ' ? header.slice(7).trim() : '';
    if (!timingSafeEqual(digest(given), expected) || given === '') {
      return sendError(reply, { error: 'Send the operator token as "Authorization: Bearer <token>"', code: 'unauthorized' });
    }
    return undefined;
  };

  for (const route of ADMIN_ROUTES) {
    fastify.route({
      method: route.method,
      url: route.url,
      onRequest: operatorOnly,
      errorHandler: routeErrorHandler,
      handler: (req, reply) => forward(core, route, req, reply),
    });
  }
}

async function forward(core: GatewayCore, route: AdminRoute, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const params = (req.params ?? {}) as Record<string, string>;
  const details: ErrorDetail[] = [];
  for (const [schema, value] of [[route.params, params], [route.body, req.body ?? {}]] as const) {
    const r = schema?.safeParse(value);
    if (r && !r.success) details.push(...detailsFromZod(r.error));
  }
  if (details.length > 0) return sendError(reply, { error: 'The request is invalid', code: 'invalid_request', details });
  const message: RpcRequest = {
    ctx: { tenant_id: '', actor: { type: 'operator', id: 'operator' }, request_id: req.id, scopes: [] },
    params,
    query: {},
    ...(route.body ? { body: req.body ?? {} } : {}),
  };
  if (route.secret) reply.header('cache-control', 'no-store');
  const r = await core.rpc.call(route.subject, message);
  if (!r.ok) return sendError(reply, r.error);
  return reply.code(route.status).send(r.response);
}
