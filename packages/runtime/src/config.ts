import { z } from 'zod';
import { NatsAuthEnv, natsAuthProblems } from './nats-options';

class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const url = (protocols: string[]) =>
  z.string().refine(
    (v) => v.split(',').every((part) => {
      try {
        return protocols.includes(new URL(part.trim()).protocol);
      } catch {
        return false;
      }
    }),
    { message: `must be a ${protocols.map((p) => p.replace(':', '://')).join(' or ')} URL` },
  );

const port = z.coerce.number().int().min(0).max(65_535);

/** What every service reads. Each service extends it with its own variables. */
export const BaseEnv = z.object({
  NATS_URL: url(['nats:', 'tls:', 'ws:', 'wss:']).default('nats://127.0.0.1:4222'),
  ...NatsAuthEnv.shape,
  DATABASE_URL: url(['postgres:', 'postgresql:']).default('postgres://postgres@127.0.0.1:5432/keyway'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** The JetStream stream of key events; tests give each run its own. */
  KEYWAY_STREAM: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and - only').default('KEYWAY'),
  /** Where /health/live and /health/ready answer; 0 picks a free port. */
  HEALTH_PORT: port.optional(),
  HOST: z.string().default('127.0.0.1'),
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).max(120_000).default(5_000),
});
export type BaseEnv = z.infer<typeof BaseEnv>;

/** Validates the environment in one place; every problem names its variable. */
export function loadConfig<S extends z.ZodType>(schema: S, env: Record<string, string | undefined>): z.infer<S> {
  // An empty variable means "unset" to an operator: treat it so, rather than as an invalid value.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = schema.safeParse(cleaned);
  if (result.success) {
    const problems = natsAuthProblems(result.data as NatsAuthEnv);
    if (problems.length > 0) throw new ConfigError(problems);
    return result.data;
  }
  throw new ConfigError(
    result.error.issues.map((i) => `${i.path.join('.') || '(environment)'}: ${i.message}`),
  );
}

/** For `main.ts`: a bad value stops the process with a message that names the variable. */
export function loadConfigOrExit<S extends z.ZodType>(service: string, schema: S): z.infer<S> {
  try {
    return loadConfig(schema, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`[${service}] ${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
}
