import type { FastifyInstance } from 'fastify';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { sendError } from './error-reply';

const ADMIN_PREFIX = '/admin/';

/**
 * The operator API's limit per client address (DESIGN, Operators): `perMinute` calls a minute,
 * every call counted (a wrong token too, so guessing it is slow), before the token is checked.
 * A refused call is `429 rate_limited` with `Retry-After` and `retry_after`.
 *
 * Counted in this replica's memory (rate-limiter-flexible; a window starts at an address's first
 * call): the operator API needs no Redis to answer, and n replicas let at most n × the limit
 * through, which is still a bound. The address is `req.ip`, so it follows Fastify's `trustProxy`.
 * Registered on the Fastify instance that serves `/admin/v1`; other URLs pay one prefix test.
 */
export function registerAdminRateLimit(fastify: FastifyInstance, perMinute: number): void {
  const limiter = new RateLimiterMemory({ keyPrefix: 'admin', points: perMinute, duration: 60 });
  fastify.addHook('onRequest', (req, reply, done) => {
    // The matched route, not the raw URL: `/%61dmin/…` reaches the admin routes too.
    if (!req.routeOptions.url?.startsWith(ADMIN_PREFIX)) {
      done();
      return;
    }
    limiter.consume(req.ip).then(
      () => done(),
      (res: unknown) => {
        if (!(res instanceof RateLimiterRes)) {
          done(res instanceof Error ? res : new Error(String(res)));
          return;
        }
        const retryAfter = Math.max(1, Math.ceil(res.msBeforeNext / 1000));
        reply.header('retry-after', String(retryAfter));
        sendError(reply, {
          error: `Too many calls to the operator API from this address; retry in ${retryAfter} s`,
          code: 'rate_limited',
          limit: perMinute,
          retry_after: retryAfter,
        });
      },
    );
  });
}
