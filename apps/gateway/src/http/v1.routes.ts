import { KeywayError, ROUTES, type Route, type Scope } from '@keyway/contracts';
import type { FastifyInstance, onRequestAsyncHookHandler } from 'fastify';
import type { Gateway } from '../gateway-core';
import { noStore } from './conventions';
import { replyError } from './error-reply';
import { admit, authenticate, forward, whoamiJson, type Caller } from './request-path';
import { answerOf, requireMode } from './route-call';
import { admitMember, sessionOf } from './session-path';

const JSON_TYPE = 'application/json; charset=utf-8';
const WHOAMI_IS_FOR_KEYS = new KeywayError('missing_key', 'GET /v1/whoami describes an API key: send one as "Authorization: Bearer <key>" (a signed-in member reads GET /auth/v1/session)');

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
      const authorization = req.headers.authorization;
      // No key and a cookie: a signed-in member (session-path.ts). A Bearer key decides alone.
      if (authorization === undefined && req.headers.cookie !== undefined) {
        const session = await sessionOf(gateway, req);
        if (session !== undefined) {
          if (route === undefined) throw WHOAMI_IS_FOR_KEYS;
          req.caller = await admitMember(gateway, session, req, reply, scopes, route.allScopes === true, route.testModeOnly === true);
          requireMode(route, req.caller);
          return;
        }
      }
      const pending = authenticate(gateway, authorization);
      // A cache hit is synchronous: no promise to wait for.
      const key = pending instanceof Promise ? await pending : pending;
      req.caller = await admit(gateway, key, scopes, reply, route?.allScopes === true);
      if (route) requireMode(route, req.caller);
    };

  // The answer as text (whoamiJson: the key's part serialised once per cached key), sent from a
  // plain handler: no promise to settle.
  fastify.route({
    method: 'GET',
    url: '/v1/whoami',
    onRequest: gate([]),
    errorHandler: replyError,
    handler: (req, reply) => reply.type(JSON_TYPE).send(whoamiJson(req.caller!)),
  });

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
