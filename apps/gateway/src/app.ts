import fastifyCookie from '@fastify/cookie';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Logger as NestLogger } from '@nestjs/common';
import Fastify, { type FastifyInstance } from 'fastify';
import { initMetrics, startTracing, watchDependencies } from '@keyway/runtime';
import { Rpc } from '@keyway/contracts';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module';
import { SERVICE, type GatewayConfig } from './config';
import { GatewayCore } from './gateway-core';
import { registerAdminRateLimit } from './http/admin-limit';
import { registerAdminRoutes } from './http/admin.routes';
import { registerAuthRoutes } from './http/auth.routes';
import { AllExceptionsFilter } from './http/all-exceptions.filter';
import { registerDashboard } from './http/dashboard.routes';
import { applyConventions, fastifyOptions } from './http/conventions';
import { sendError } from './http/error-reply';
import { instrumentHttp } from './http/http-metrics';
import { registerMetricsRoutes } from './http/metrics.routes';
import { registerRequestTrace, requestTrace } from './http/request-trace';
import { registerV1Routes } from './http/v1.routes';
import { registerDocs } from './openapi/docs';

/**
 * Builds the gateway, ready to `listen` (main.ts does; tests call it in-process on port 0).
 * Nest's own body parser is off: the gateway takes JSON only, through one parser (conventions.ts).
 */
export interface GatewayOptions {
  /**
   * Serve `/docs` (default). The in-process jest tests turn it off: @fastify/static (under
   * swagger-ui) loads an ES-module dependency that jest's CommonJS runtime cannot require unless
   * jest.config.js lets swc transform it; the openapi spec covers /docs in a child process.
   */
  docs?: boolean;
  /** Where the dashboard's build is (default: apps/dashboard/dist, beside this app). */
  dashboardDir?: string;
}

/**
 * The gateway's two listeners, one process: `app` is the public API (PORT: /v1, /auth/v1, /health,
 * /docs, /dashboard), `admin` the operator's (ADMIN_PORT: /admin/v1 and /metrics). Listen on
 * `admin` first, then `app` (a caller that waits for the public /health/ready then finds both);
 * closing `app` (SIGTERM included) closes `admin` too.
 */
export interface GatewayListeners {
  app: NestFastifyApplication;
  admin: FastifyInstance;
}

export async function createGateway(config: GatewayConfig, options: GatewayOptions = {}): Promise<GatewayListeners> {
  startTracing(SERVICE);
  initMetrics(SERVICE);
  const adapter = new FastifyAdapter(fastifyOptions(config.BODY_LIMIT_BYTES, config.TRUST_PROXY));
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config), adapter, {
    bufferLogs: true,
    bodyParser: false,
  });
  app.useLogger(app.get(Logger));
  app.useGlobalFilters(new AllExceptionsFilter());
  app.enableShutdownHooks();
  const fastify = app.getHttpAdapter().getInstance();
  // Cookies are parsed only where a route asks (no hook): the Bearer hot path never pays for it.
  await app.register(fastifyCookie, { hook: false });
  applyConventions(fastify);
  // Before any route: each route's metrics hook is added as it is registered.
  instrumentHttp(fastify);
  registerRequestTrace(fastify);
  if (config.HTTP_LOGS) logRequests(fastify);
  await app.init();
  const core = app.get(GatewayCore);
  registerV1Routes(fastify, core);
  registerAuthRoutes(fastify, core);
  if (options.docs !== false) registerDocs(fastify);
  registerDashboard(fastify, options.dashboardDir);

  // The operator listener: plain Fastify on the same conventions (request id, JSON only, error
  // shape), sharing the core (RPC, cache, invalidation) with the public one.
  const admin = Fastify(fastifyOptions(config.BODY_LIMIT_BYTES, config.TRUST_PROXY));
  applyConventions(admin);
  instrumentHttp(admin);
  registerRequestTrace(admin);
  registerAdminRateLimit(admin, config.ADMIN_RATE_LIMIT_PER_MINUTE);
  if (config.HTTP_LOGS) logRequests(admin);
  admin.setNotFoundHandler((_req, reply) => sendError(reply, { error: 'No such route', code: 'not_found' }));
  registerAdminRoutes(admin, core);
  registerMetricsRoutes(admin);
  // keyway_dependency_up: nats comes from the readiness checks (health.ts); identity, a reported
  // check, and the limiter's Redis are added here.
  watchDependencies({
    // As the readiness report asks it: a verify for an id no key has is a healthy answer.
    identity: async () => {
      const r = await core.rpc.call(Rpc.keysVerify, { lookup_id: '00000000' }, 1_000);
      if (!r.ok) throw new Error(r.error.code);
    },
    ...(config.REDIS_URL && { redis: () => (core.limiter.mode === 'redis' ? Promise.resolve() : Promise.reject(new Error('fallback'))) }),
  });
  fastify.addHook('onClose', async () => {
    await admin.close();
  });
  return { app, admin };
}

/**
 * The gateway's routes live on Fastify itself, outside Nest's middleware: log them here. Path
 * only (a query string could carry anything), the key's public prefix, never a header.
 */
function logRequests(fastify: FastifyInstance): void {
  const http = new NestLogger('http');
  fastify.addHook('onResponse', (req, reply, done) => {
    http.log({
      req_id: req.id,
      trace_id: requestTrace(req).traceId,
      method: req.method,
      path: req.url.split('?')[0],
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 100) / 100,
      key: req.caller?.key.record.prefix,
    });
    done();
  });
}
