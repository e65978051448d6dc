import { createHash, timingSafeEqual } from 'node:crypto';
import { CreateTenantBody, detailsFromZod, Rpc, type RpcRequest } from '@keyway/contracts';
import type { FastifyInstance } from 'fastify';
import type { GatewayCore } from '../gateway-core';
import { routeErrorHandler, sendError } from './error-reply';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/**
 * `/admin/v1`, for operators: the `KEYWAY_ADMIN_TOKEN` bearer token, compared in constant time
 * (both sides hashed first, so neither length nor content leaks). API keys are never accepted.
 * Without a configured token the operator API is off: 503, not open.
 */
export function registerAdminRoutes(fastify: FastifyInstance, core: GatewayCore): void {
  const token = core.config.KEYWAY_ADMIN_TOKEN;
  const expected = token === undefined ? undefined : digest(token);

  fastify.route({
    method: 'POST',
    url: '/admin/v1/tenants',
    onRequest: async (req, reply) => {
      if (expected === undefined) {
        return sendError(reply, { error: 'The operator API is not configured on this gateway (KEYWAY_ADMIN_TOKEN)', code: 'unavailable' });
      }
      const header = req.headers.authorization;
      const given = typeof header === 'string' && header.slice(0, 7).toLowerCase() === 'bearer ' ? header.slice(7).trim() : '';
      if (!timingSafeEqual(digest(given), expected) || given === '') {
        return sendError(reply, { error: 'Send the operator token as "Authorization: Bearer <token>"', code: 'unauthorized' });
      }
      return undefined;
    },
    errorHandler: routeErrorHandler,
    handler: async (req, reply) => {
      const parsed = CreateTenantBody.safeParse(req.body ?? {});
      if (!parsed.success) return sendError(reply, { error: 'The request is invalid', code: 'invalid_request', details: detailsFromZod(parsed.error) });
      const message: RpcRequest = {
        ctx: { tenant_id: '', actor: { type: 'operator', id: 'operator' }, request_id: req.id, scopes: [] },
        params: {},
        query: {},
        body: req.body,
      };
      const r = await core.rpc.call(Rpc.tenantsCreate, message);
      if (!r.ok) return sendError(reply, r.error);
      return reply.code(201).send(r.response);
    },
  });
}
