import { ROUTES, type Route, type Scope } from '@keyway/contracts';
import type { FastifyInstance, onRequestAsyncHookHandler } from 'fastify';
import type { Gateway } from '../gateway-core';
import { noStore } from './conventions';
import { replyError } from './error-reply';
import { admit, authenticate, forward, whoami, type Caller } from './request-path';
import { answerOf, requireMode } from './route-call';

declare module 'fastify' {
  interface FastifyRequest {
    caller: Caller | null;
  }
}

/**
 * The `/v1` edge, registered straight on Fastify: one route per row of `ROUTES` (no Nest
 * controller in between), each authenticate → admit in `onRequest`, then forward in the handler
 * (see request-path.ts). One error path: whatever a step throws goes to `replyError`.
 */
export function registerV1Routes(fastify: FastifyInstance, gateway: Gateway): void {
  fastify.decorateRequest('caller', null);

  const gate = (scopes: readonly Scope[], route?: Route): onRequestAsyncHookHandler =>
    async function gate(req, reply) {
      const pending = authenticate(gateway, req.headers.authorization);
      // A cache hit is synchronous: no promise to wait for.
      const key = pending instanceof Promise ? await pending : pending;
      req.caller = await admit(gateway, key, scopes, reply, route?.allScopes === true);
      if (route) requireMode(route, req.caller);
    };

  fastify.route({ method: 'GET', url: '/v1/whoami', onRequest: gate([]), errorHandler: replyError, handler: async (req) => whoami(req.caller!) });

  for (const route of ROUTES) {
    fastify.route({
      method: route.method,
      url: route.path,
      onRequest: gate(route.scopes, route),
      errorHandler: replyError,
      handler: async (req, reply) => {
        const { status, body } = answerOf(route, await forward(gateway, route, req.caller!, req, reply));
        if (route.secret) noStore(reply);
        reply.code(status);
        return status === 204 ? reply.send() : reply.send(body ?? {});
      },
    });
  }
}
