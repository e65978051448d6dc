import { detailsFromZod, grants, KeywayError, type ErrorBody, type ErrorDetail, type Route, type RpcRequest, type Scope, type WhoAmI } from '@keyway/contracts';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { CachedKey } from '../auth/verification-cache';
import type { Gateway } from '../gateway-core';
import { idempotencyOf, markReplayed } from './idempotency';
import { requestTrace } from './request-trace';
import { callRoute } from './route-call';
import { rateLimitedError, rateLimitHeaders, type RateLimitDecision } from '../rate-limit';
import { CallOutcome, neededScopes } from '../usage/usage-recorder';

/**
 * The per-request path of `/v1`, in the order it runs: authenticate → admit → forward. Each step is
 * a named function that either returns what the next needs or throws a KeywayError, which the
 * route's one error handler (`replyError`) answers in the documented shape. Authentication and
 * admission run in `onRequest`, before the body is read: an unauthenticated caller never gets to
 * upload 1 MiB, and failed authentication never counts against a limit.
 */

/** What authentication and admission established, for the handler. */
export interface Caller {
  key: CachedKey;
  decision: RateLimitDecision;
  /** A signed-in member (session-path.ts): `key` then holds their role's scopes and mode. */
  member?: { id: string; session_hash: string };
}

/** A refusal as the documented error (the verifier and the services answer error bodies). */
export const refusal = (body: ErrorBody): KeywayError => {
  const { error, code, ...extra } = body;
  return new KeywayError(code, error, extra);
};

/**
 * The key behind `Authorization`: cache hit (synchronous, most requests), or identity over NATS.
 * A refusal is the documented 401 naming the prefix, or 503 when keys cannot be checked.
 */
export function authenticate(gateway: Gateway, header: string | undefined): CachedKey | Promise<CachedKey> {
  const result = gateway.verifier.authenticate(header);
  if (result instanceof Promise) {
    return result.then((r) => {
      if (!r.ok) throw refusal(r.error);
      return r.key;
    });
  }
  if (!result.ok) throw refusal(result.error);
  return result.key;
}

/**
 * Counts the call against the key's limits (every answer from here on carries the RateLimit
 * headers), then checks the route's scopes: any one listed is enough, `write` covers `read`.
 */
export async function admit(gateway: Gateway, key: CachedKey, scopes: readonly Scope[], reply: FastifyReply, allScopes = false): Promise<Caller> {
  const rec = key.record;
  const decision = await gateway.limiter.consume(rec.key_id, rec.rate_limit);
  reply.headers(rateLimitHeaders(decision));
  if (!decision.allowed) {
    gateway.usage.record(rec, CallOutcome.rateLimited);
    throw rateLimitedError(decision);
  }
  // The scopes this call needed (see neededScopes); none of a scoped route's: refused.
  const needed = neededScopes(rec.scopes, scopes);
  // Any one scope listed, or every one for an `allScopes` route: the first missing is named.
  const missing = allScopes ? scopes.find((s) => !grants(rec.scopes, s)) : needed === 0 ? scopes[0] : undefined;
  if (missing !== undefined) {
    gateway.usage.record(rec, CallOutcome.refused);
    const required = missing;
    throw new KeywayError('insufficient_scope', `This key lacks the ${required} scope`, { required_scope: required });
  }
  gateway.usage.record(rec, needed);
  return { key, decision };
}

/**
 * Validates params, query and body with the route's own schemas, then one NATS request to the
 * owning service with the caller as context. The services validate again with the same schemas,
 * so they get exactly what the client sent.
 */
export async function forward(gateway: Gateway, route: Route, caller: Caller, req: FastifyRequest, reply?: FastifyReply): Promise<unknown> {
  const params = (req.params ?? {}) as Record<string, string>;
  const query = (req.query ?? {}) as Record<string, unknown>;
  // No body is `{}`; a body that is there (`null` too) is validated as sent.
  const body = route.body ? (req.body === undefined ? {} : req.body) : undefined;
  const details: ErrorDetail[] = [];
  validate(route.params, params, 'params', details);
  validate(route.query, query, 'query', details);
  validate(route.body, body, 'body', details);
  if (details.length > 0) throw new KeywayError('invalid_request', 'The request is invalid', { details });
  const idempotency = idempotencyOf(route, req, params, body);

  const rec = caller.key.record;
  const message: RpcRequest = {
    ctx: { tenant_id: rec.tenant_id, actor: caller.member ? { type: 'member', id: caller.member.id } : { type: 'key', id: rec.key_id }, ...(caller.member && { session_hash: caller.member.session_hash }), request_id: req.id, scopes: rec.scopes, environment: rec.environment, ...(idempotency && { idempotency }) },
    params,
    query,
    ...(body === undefined ? {} : { body }),
  };
  const r = await callRoute(gateway, route, message, requestTrace(req));
  markReplayed(reply, r.replayed);
  if (!r.ok) throw refusal(r.error);
  return r.response;
}

/** `GET /v1/whoami`, answered by the gateway itself from the verified key. */
function whoami({ key, decision }: Caller): WhoAmI {
  const r = key.record;
  return {
    api_key_id: r.key_id,
    prefix: r.prefix,
    tenant_id: r.tenant_id,
    scopes: r.scopes,
    environment: r.environment,
    rate_limit: r.rate_limit,
    expires_at: r.expires_at,
    remaining: decision.remainingByWindow,
  };
}

/**
 * What `whoami` answers up to `"remaining":`, per cached key: all of it but `remaining` is the
 * key's and is the same on every call until the key is verified again (a new CachedKey). Kept for
 * the busiest keys only, started over when full: one string per key would add tens of MB to a
 * gateway whose 100,000 cached keys each called whoami once (`npm run bench -- gateway-memory`).
 */
const whoamiHeads = new Map<CachedKey, string>();
const WHOAMI_HEADS_MAX = 1_024;
const REMAINING_LAST = ',"remaining":null}';

/**
 * `JSON.stringify(whoami(caller))`, byte for byte, without serialising the key's part again on
 * every call: only `remaining` is (`remaining` is whoami's last field).
 */
export function whoamiJson(caller: Caller): string {
  let head = whoamiHeads.get(caller.key);
  if (head === undefined) {
    const whole = JSON.stringify({ ...whoami(caller), remaining: null });
    head = whole.endsWith(REMAINING_LAST) ? whole.slice(0, -'null}'.length) : '';
    if (whoamiHeads.size >= WHOAMI_HEADS_MAX) whoamiHeads.clear();
    whoamiHeads.set(caller.key, head);
  }
  // A shape this does not expect (never, today): the whole answer serialised as before.
  if (head === '') return JSON.stringify(whoami(caller));
  return `${head}${JSON.stringify(caller.decision.remainingByWindow)}}`;
}

function validate(schema: z.ZodType | undefined, value: unknown, where: string, details: ErrorDetail[]): void {
  if (!schema) return;
  const r = schema.safeParse(value);
  if (!r.success) for (const d of detailsFromZod(r.error)) details.push({ field: d.field === '(body)' ? `(${where})` : d.field, message: d.message });
}
