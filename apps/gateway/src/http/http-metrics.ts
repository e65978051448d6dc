import { fastCounter, fastHistogram, type CounterSeries, type HistogramSeries } from '@keyway/runtime';
import type { FastifyInstance, FastifyReply, onResponseHookHandler } from 'fastify';

/**
 * keyway_http_requests_total{route,method,status,code}, keyway_http_request_duration_seconds
 * {route,method} and keyway_auth_failures_total{code} (the `service` label is the registry's).
 *
 * `route` is the route's template (`/v1/keys/:id`), taken when the route is registered: a raw
 * path, and with it a key id or a tenant id, never becomes a label. What matched no route is
 * `unmatched`. Each route's series are resolved once (onRoute) and bumped with `+= 1` per request.
 */
const requests = () => fastCounter('keyway_http_requests_total', 'HTTP requests answered, by route template, method, status and error code ("ok" below 400)');
const duration = () => fastHistogram('keyway_http_request_duration_seconds', 'Time to answer an HTTP request, by route template and method');
const authFailures = () => fastCounter('keyway_auth_failures_total', 'Requests refused 401, by error code');

/** The error code of a non-2xx answer, noted by sendError (error-reply.ts). */
const errorCodes = new WeakMap<FastifyReply, string>();
export function noteErrorCode(reply: FastifyReply, code: string): void {
  errorCodes.set(reply, code);
}

/** Error codes come from one enum and statuses are HTTP's: bounded, but capped all the same. */
const MAX_SERIES_PER_ROUTE = 200;

class RouteSeries {
  private readonly byOutcome = new Map<number | string, CounterSeries>();
  private readonly elapsed: HistogramSeries;

  constructor(
    private readonly route: string,
    private readonly method: string,
  ) {
    this.elapsed = duration().series({ route, method });
  }

  readonly onResponse: onResponseHookHandler = (_req, reply, done) => {
    const status = reply.statusCode;
    this.elapsed.observe(reply.elapsedTime / 1000);
    if (status < 400) {
      // The common case: one Map read by a small integer.
      let s = this.byOutcome.get(status);
      if (s === undefined) this.byOutcome.set(status, (s = this.series(status, 'ok')));
      s.n += 1;
    } else {
      const code = errorCodes.get(reply) ?? 'error';
      const key = `${status} ${code}`;
      let s = this.byOutcome.get(key);
      if (s === undefined) this.byOutcome.set(key, (s = this.series(status, code)));
      s.n += 1;
      if (status === 401) authFailures().series({ code }).n += 1;
    }
    done();
  };

  private series(status: number, code: string): CounterSeries {
    const bounded = this.byOutcome.size < MAX_SERIES_PER_ROUTE ? code : 'other';
    return requests().series({ route: this.route, method: this.method, status: String(status), code: bounded });
  }
}

/**
 * Before any route is registered (so every route, Nest's included, gets its hook). A route's own
 * onResponse hook carries its template; the 404 handler has none, so one global hook counts
 * only what matched nothing (`req.is404` is a property read).
 */
export function instrumentHttp(fastify: FastifyInstance): void {
  fastify.addHook('onRoute', (opts) => {
    // A route for several methods (rare) is one series set, its methods joined.
    const method = Array.isArray(opts.method) ? opts.method.join('|') : opts.method;
    const hook = new RouteSeries(opts.url ?? opts.path, method).onResponse;
    const existing = opts.onResponse;
    opts.onResponse = existing === undefined ? [hook] : Array.isArray(existing) ? [...existing, hook] : [existing, hook];
  });
  const unmatched = new Map<string, RouteSeries>();
  fastify.addHook('onResponse', (req, reply, done) => {
    if (!req.is404) return done();
    // Bounded by HTTP's methods: anything else is refused before routing.
    const method = req.method.length <= 10 ? req.method : 'OTHER';
    let s = unmatched.get(method);
    if (s === undefined) unmatched.set(method, (s = new RouteSeries('unmatched', method)));
    s.onResponse.call(fastify, req, reply, done);
  });
}
