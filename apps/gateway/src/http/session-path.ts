import { CSRF_HEADER, grants, KeywayError, sessionCookieName, type Environment, type Scope } from '@keyway/contracts';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { csrfMatches, SessionAuth, type SessionCaller } from '../auth/session-auth';
import type { Gateway } from '../gateway-core';
import { rateLimitedError, rateLimitHeaders } from '../rate-limit';
import type { Caller } from './request-path';

const MODE_HEADER = 'keyway-mode';
/** Methods that change nothing: the only ones a session may call without its CSRF token. */
const SAFE = new Set(['GET', 'HEAD']);

const CSRF_FAILED = new KeywayError('csrf_failed', `A change made with a session needs its CSRF token in ${CSRF_HEADER} (from sign-in or GET /auth/v1/session)`);
const BAD_MODE = new KeywayError('invalid_request', 'The request is invalid', { details: [{ field: 'Keyway-Mode', message: 'must be live or test' }] });

/**
 * The session cookie's id, if the request carries a well-formed one, under the one name this
 * gateway's configuration gives (`kw_session`, or `__Host-kw_session` with SESSION_COOKIE_HOST_PREFIX):
 * a cookie of the other name is not a session here, so a plain one cannot stand in for the Secure one.
 */
export function sessionIdOf(gateway: Gateway, req: FastifyRequest): string | undefined {
  const header = req.headers.cookie;
  if (header === undefined) return undefined;
  return SessionAuth.idOf(req.server.parseCookie(header)[sessionCookieName({ secure: gateway.config.SESSION_COOKIE_SECURE, hostPrefix: gateway.config.SESSION_COOKIE_HOST_PREFIX })]);
}

/** The signed-in member behind the cookie (`401 unauthorized` when it has ended), or undefined without one. */
export async function sessionOf(gateway: Gateway, req: FastifyRequest): Promise<SessionCaller | undefined> {
  const id = sessionIdOf(gateway, req);
  return id === undefined ? undefined : gateway.sessions.authenticate(id);
}

/** A change (any method but GET and HEAD) made with a session carries the session's CSRF token. */
export function requireCsrf(req: FastifyRequest, session: SessionCaller): void {
  if (!SAFE.has(req.method) && !csrfMatches(req.headers[CSRF_HEADER], session.id)) throw CSRF_FAILED;
}

/**
 * The session path of `/v1` (no `Authorization` header, a session cookie): the CSRF token on
 * a change, then the member's own limits and the role's scopes, in live mode unless the request
 * says `Keyway-Mode: test`. Counted against the member, not a key: no `used` event.
 */
export async function admitMember(gateway: Gateway, session: SessionCaller, req: FastifyRequest, reply: FastifyReply, scopes: readonly Scope[], allScopes: boolean, testOnly = false): Promise<Caller> {
  requireCsrf(req, session);
  const mode = req.headers[MODE_HEADER];
  if (mode !== undefined && mode !== 'live' && mode !== 'test') throw BAD_MODE;
  // A test-only route (`DELETE /v1/test-data`: "a test key or a session") acts on test data whatever the header.
  const key = SessionAuth.asKey(session, testOnly ? 'test' : ((mode ?? 'live') as Environment));
  const rec = key.record;
  const decision = await gateway.limiter.consume(rec.key_id, rec.rate_limit);
  reply.headers(rateLimitHeaders(decision));
  if (!decision.allowed) throw rateLimitedError(decision);
  // Any one scope listed, or every one for an `allScopes` route, as for keys.
  const missing = allScopes ? scopes.find((s) => !grants(rec.scopes, s)) : scopes.length > 0 && !scopes.some((s) => grants(rec.scopes, s)) ? scopes[0] : undefined;
  if (missing !== undefined) throw new KeywayError('insufficient_scope', `The ${session.record.role} role lacks the ${missing} scope`, { required_scope: missing });
  return { key, decision, member: { id: session.record.member_id, session_hash: session.hash } };
}
