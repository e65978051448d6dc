import type { LoggerService } from '@nestjs/common';
import type { Params } from 'nestjs-pino';

/** Paths whose values never reach a log line: credentials, secrets and their hashes. */
const REDACT_PATHS = [
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
 * pino for Nest, without its per-request middleware (`forRoutes: []`). That middleware runs each
 * request inside an AsyncLocalStorage, and the first `run` switches on Node 20's promise hooks
 * for the life of the process: every promise of every request (the gateway's hot path, the
 * services' NATS handlers) then pays for async-context tracking. A readiness probe was enough to
 * turn it on. Request logs come from the gateway's own onResponse hook (`HTTP_LOGS`), which
 * carries the request id; the services log with their request's `request_id` from the NATS message.
 */
export function loggerParams(service: string, level: string): Params {
  return {
    forRoutes: [],
    pinoHttp: {
      level,
      name: service,
      autoLogging: false,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
  };
}

/**
 * The `(fields, message)` logger the plain layers take (@keyway/messaging's and @keyway/outbox's
 * MinimalLogger has this shape): they log without Nest.
 */
export interface FieldLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/**
 * A Nest logger as a FieldLogger, for a service handing its logger to those layers: the fields and
 * the message go as one object, which nestjs-pino writes as one line with the fields as keys.
 */
export function minimalLogger(nest: Pick<LoggerService, 'log' | 'warn' | 'error'>): FieldLogger {
  return {
    info: (obj, msg) => nest.log({ ...obj, msg }),
    warn: (obj, msg) => nest.warn({ ...obj, msg }),
    error: (obj, msg) => nest.error({ ...obj, msg }),
  };
}
