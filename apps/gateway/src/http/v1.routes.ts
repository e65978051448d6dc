import {
  detailsFromZod,
  grants,
  ROUTES,
  type ErrorDetail,
  type Route,
  type RpcRequest,
  type Scope,
  type WhoAmI,
} from '@keyway/contracts';
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import type { z } from 'zod';
import type { CachedKey } from '../auth/verification-cache';
import type { GatewayCore } from '../gateway-core';
import { rateLimitedError, rateLimitHeaders, type RateLimitDecision } from '../rate-limit';
import { routeErrorHandler, sendError } from './error-reply';
import { noStore } from './conventions';

/** What the auth hook established for the handler. */
export interface Caller {
  key: CachedKey;
  decision: RateLimitDecision;
}

declare module 'fastify' {
  interface FastifyRequest {
    caller: Caller | null;
  }
}

function parsePart(schema: z.ZodType | undefined, value: unknown, where: string, details: ErrorDetail[]): void {
  if (!schema) return;
  const r = schema.safeParse(value);
  if (!r.success) for (const d of detailsFromZod(r.error)) details.push({ field: d.field === '(body)' ? `(${where})` : d.field, message: d.message });
}

/**
 * The `/v1` edge, registered straight on Fastify (one route per row of `ROUTES`, no Nest
 * controller in between): authenticate (cache, or identity over NATS), count the call against the
 * key's limits, check the route's scopes, validate params/query/body with the route's own
 * schemas, then one NATS request to the owning service. Failed authentication never counts
 * against a limit; every answer after authentication carries the RateLimit headers.
 */
export function registerV1Routes(fastify: FastifyInstance, core: GatewayCore): void {
  fastify.decorateRequest('caller', null);

  const authenticate = async (req: FastifyRequest, reply: FastifyReply): Promise<Caller | undefined> => {
    const pending = core.verifier.authenticate(req.headers.authorization);
    const auth = pending instanceof Promise ? await pending : pending;
    if (!auth.ok) {
      sendError(reply, auth.error);
      return undefined;
    }
    const rec = auth.key.record;
    core.usage.record(rec);
    const decision = await core.limiter.consume(rec.key_id, rec.rate_limit);
    reply.headers(rateLimitHeaders(decision));
    if (!decision.allowed) {
      sendError(reply, rateLimitedError(decision).toBody());
      return undefined;
    }
    const caller = { key: auth.key, decision };
    req.caller = caller;
    return caller;
  };

  // Runs before the body is read: an unauthenticated caller never gets to upload 1 MiB.
  const guard = (scopes: readonly Scope[]): onRequestAsyncHookHandler =>
    async function guardHook(req, reply) {
      const caller = await authenticate(req, reply);
      if (!caller) return reply;
      if (scopes.length === 0) return undefined;
      const granted = caller.key.record.scopes;
      if (!scopes.some((s) => grants(granted, s))) {
        const required = scopes[0]!;
        return sendError(reply, {
          error: `This key lacks the ${required} scope`,
          code: 'insufficient_scope',
          required_scope: required,
        });
      }
      return undefined;
    };

  fastify.route({
    method: 'GET',
    url: '/v1/whoami',
    onRequest: guard([]),
    errorHandler: routeErrorHandler,
    handler: async (req, reply) => {
      const { key, decision } = req.caller!;
      const r = key.record;
      const body: WhoAmI = {
        api_key_id: r.key_id,
        prefix: r.prefix,
        tenant_id: r.tenant_id,
        scopes: r.scopes,
        environment: r.environment,
        rate_limit: r.rate_limit,
        expires_at: r.expires_at,
        remaining: decision.remainingByWindow,
      };
      return reply.send(body);
    },
  });

  for (const route of ROUTES) registerRoute(fastify, core, route, guard(route.scopes));
}

function registerRoute(fastify: FastifyInstance, core: GatewayCore, route: Route, onRequest: onRequestAsyncHookHandler): void {
  fastify.route({
    method: route.method,
    url: route.path,
    onRequest,
    errorHandler: routeErrorHandler,
    handler: async (req, reply) => {
      const caller = req.caller!;
      const details: ErrorDetail[] = [];
      const params = (req.params ?? {}) as Record<string, string>;
      const query = (req.query ?? {}) as Record<string, unknown>;
      const body = route.body ? (req.body ?? {}) : undefined;
      parsePart(route.params, params, 'params', details);
      parsePart(route.query, query, 'query', details);
      parsePart(route.body, body, 'body', details);
      if (details.length > 0) return sendError(reply, { error: 'The request is invalid', code: 'invalid_request', details });

      const rec = caller.key.record;
      // The services validate again with the same schemas, so they get what the client sent.
      const message: RpcRequest = {
        ctx: { tenant_id: rec.tenant_id, actor: { type: 'key', id: rec.key_id }, request_id: req.id, scopes: rec.scopes, environment: rec.environment },
        params,
        query,
        ...(body === undefined ? {} : { body }),
      };
      const r = await core.rpc.call(route.subject, message);
      if (!r.ok) return sendError(reply, r.error);
      if (route.secret) noStore(reply);
      reply.code(route.status);
      return route.status === 204 ? reply.send() : reply.send(r.response ?? {});
    },
  });
}
