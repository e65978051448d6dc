import { registerMetricsRoute } from '@keyway/runtime';
import type { FastifyInstance } from 'fastify';

/**
 * GET /metrics: the process's Prometheus text (prom-client's registry: the gateway's request,
 * auth, cache, limiter and RPC series, and the process defaults). Mounted on the admin listener
 * (ADMIN_PORT), never on the public port; no auth, the network policy keeps it internal.
 */
export function registerMetricsRoutes(fastify: FastifyInstance): void {
  registerMetricsRoute(fastify);
}
