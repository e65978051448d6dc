import type { Params } from 'nestjs-pino';
import { HealthController } from './health';

/** Paths whose values never reach a log line: credentials, secrets and their hashes. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-admin-token"]',
  'req.headers.cookie',
  'headers.authorization',
  '*.authorization',
  '*.password',
  '*.key',
  '*.secret',
  '*.hash',
  '*.token',
  'body.password',
  'body.key',
];

/**
 * pino for Nest. Its per-request middleware (pino-http, a child logger per request) is bound to
 * the Nest controllers only — /health: the gateway's /v1 routes live on Fastify directly and log
 * from their own hook, and on the hot path a middleware per request costs more than it tells.
 */
export function loggerParams(service: string, level: string, opts: { httpLogs?: boolean } = {}): Params {
  return {
    forRoutes: [HealthController],
    pinoHttp: {
      level,
      name: service,
      autoLogging: opts.httpLogs ?? false,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      // Fastify's id (which the gateway derives from a sanitised X-Request-Id), never the raw header.
      genReqId: (req) => (req as { id?: string }).id ?? '',
      serializers: {
        req: (req: { id: string; method: string; url: string }) => ({ id: req.id, method: req.method, url: req.url }),
      },
    },
  };
}
