import { ChangePasswordBody, detailsFromZod, KeywayError, Rpc, SESSION_ABSOLUTE_MS, sessionCookieName, SessionReply, SignInBody, type ChangePasswordRequest, type SessionRecord, type SessionView, type SignInRequest } from '@keyway/contracts';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { csrfToken, mintSessionId, SESSION_ENDED, sessionHash, type SessionCaller } from '../auth/session-auth';
import type { Gateway } from '../gateway-core';
import { noStore } from './conventions';
import { replyError } from './error-reply';
import { refusal } from './request-path';
import { requestTrace } from './request-trace';
import { requireCsrf, sessionIdOf, sessionOf } from './session-path';

const view = (id: string, r: SessionRecord): SessionView => ({
  member: { id: r.member_id, name: r.name, email: r.email },
  tenant: { id: r.tenant_id, name: r.tenant_name },
  role: r.role,
  csrf_token: csrfToken(id),
  expires_at: r.expires_at,
});

/**
 * `/auth/v1/session`: sign in, read the session (and its CSRF token again), sign out. Identity
 * checks the password, counts the attempts and keeps the session; the gateway mints the id, sends
 * identity only its hash, and sets the cookie. Every answer here carries a secret or a CSRF token,
 * or says who is signed in: `Cache-Control: no-store` on all of them, errors included.
 */
export function registerAuthRoutes(fastify: FastifyInstance, gateway: Gateway): void {
  // `kw_session`, or `__Host-kw_session` where configured: Path=/ and no Domain, as the prefix requires (contracts' sessions.ts).
  const cookieName = sessionCookieName({ secure: gateway.config.SESSION_COOKIE_SECURE, hostPrefix: gateway.config.SESSION_COOKIE_HOST_PREFIX });
  const cookie = {
    path: '/',
    httpOnly: true,
    sameSite: 'strict' as const,
    secure: gateway.config.SESSION_COOKIE_SECURE,
  };

  const signed = async (req: FastifyRequest): Promise<SessionCaller> => {
    const s = await sessionOf(gateway, req);
    if (s === undefined) throw SESSION_ENDED;
    return s;
  };

  const perAddress = new RateLimiterMemory({ keyPrefix: 'sign-in', points: gateway.config.SIGN_IN_RATE_LIMIT_PER_MINUTE, duration: 60 });
  /**
   * Sign-in and a password change (both try a password) share one budget per client address,
   * taken before the body is read: one address trying many emails, or many current passwords, is
   * slowed here, whatever identity's back-off per (email, address) says.
   */
  const limitedPerAddress = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    noStore(reply);
    await perAddress.consume(req.ip).catch((res: unknown) => {
      if (!(res instanceof RateLimiterRes)) throw res;
      const retryAfter = Math.max(1, Math.ceil(res.msBeforeNext / 1000));
      throw new KeywayError('rate_limited', `Too many password attempts from this address; retry in ${retryAfter} s`, { window: 'sign_in', retry_after: retryAfter });
    });
  };
  const withRetryAfter = (err: Parameters<typeof replyError>[0], req: FastifyRequest, reply: FastifyReply): void => {
    const retry = (err as { extra?: { retry_after?: unknown } }).extra?.retry_after;
    if (typeof retry === 'number') reply.header('retry-after', String(retry));
    replyError(err, req, reply);
  };

  fastify.route({
    method: 'POST',
    url: '/auth/v1/session',
    onRequest: limitedPerAddress,
    errorHandler: withRetryAfter,
    handler: async (req, reply) => {
      const body = SignInBody.safeParse(req.body ?? {});
      if (!body.success) throw new KeywayError('invalid_request', 'The request is invalid', { details: detailsFromZod(body.error) });
      const id = mintSessionId();
      const hash = sessionHash(id);
      const message: SignInRequest = { ...body.data, client_address: req.ip.slice(0, 64), session_hash: hash };
      const r = await gateway.rpc.call(Rpc.sessionsCreate, message, undefined, requestTrace(req));
      if (!r.ok) throw refusal(r.error);
      const record = SessionReply.parse(r.response).record;
      if (record === null) throw new KeywayError('internal', 'Something went wrong on our side');
      gateway.sessions.remember(hash, record);
      reply.setCookie(cookieName, id, { ...cookie, maxAge: SESSION_ABSOLUTE_MS / 1000 });
      return reply.code(200).send(view(id, record));
    },
  });

  fastify.route({
    method: 'GET',
    url: '/auth/v1/session',
    onRequest: async (_req, reply) => void noStore(reply),
    errorHandler: replyError,
    handler: async (req) => {
      const s = await signed(req);
      return view(s.id, s.record);
    },
  });

  fastify.route({
    method: 'DELETE',
    url: '/auth/v1/session',
    onRequest: async (_req, reply) => void noStore(reply),
    errorHandler: replyError,
    handler: async (req, reply: FastifyReply) => {
      const id = sessionIdOf(gateway, req);
      // An ended session signs out as a no-op (204, the cookie cleared); a live one needs its CSRF token.
      const s = id === undefined ? undefined : await gateway.sessions.authenticate(id).catch((err: unknown) => {
        if (err === SESSION_ENDED) return undefined;
        throw err;
      });
      if (s !== undefined) {
        requireCsrf(req, s);
        const r = await gateway.rpc.call(Rpc.sessionsDelete, { session_hash: s.hash }, undefined, requestTrace(req));
        if (!r.ok) throw refusal(r.error);
        gateway.sessions.forget(s.hash);
      }
      reply.clearCookie(cookieName, cookie);
      return reply.code(204).send();
    },
  });

  /**
   * `POST /auth/v1/password`: the signed-in member's own password, with the current one, whatever
   * the role (a viewer too). A change made with the session, so it needs the CSRF token like every
   * other (a cross-site form cannot send the header). Never idempotency-recorded: nothing here
   * may keep a hash of a password. Identity counts a wrong current password as a failed sign-in
   * (`403 forbidden`, then `429` with back-off) and ends the member's other sessions: `204`.
   */
  fastify.route({
    method: 'POST',
    url: '/auth/v1/password',
    onRequest: limitedPerAddress,
    errorHandler: withRetryAfter,
    handler: async (req, reply) => {
      const s = await signed(req);
      requireCsrf(req, s);
      const body = ChangePasswordBody.safeParse(req.body ?? {});
      if (!body.success) throw new KeywayError('invalid_request', 'The request is invalid', { details: detailsFromZod(body.error) });
      const message: ChangePasswordRequest = { ...body.data, client_address: req.ip.slice(0, 64), session_hash: s.hash };
      const r = await gateway.rpc.call(Rpc.sessionsChangePassword, message, undefined, requestTrace(req));
      if (!r.ok) throw refusal(r.error);
      return reply.code(204).send();
    },
  });
}
