import type { Params } from 'nestjs-pino';

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

export function loggerParams(service: string, level: string, opts: { httpLogs?: boolean } = {}): Params {
  return {
    pinoHttp: {
      level,
      name: service,
      autoLogging: opts.httpLogs ?? false,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      genReqId: (req) => (req.headers['x-request-id'] as string | undefined) ?? (req as { id?: string }).id ?? '',
      serializers: {
        req: (req: { id: string; method: string; url: string }) => ({ id: req.id, method: req.method, url: req.url }),
      },
    },
  };
}
