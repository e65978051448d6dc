import { createInbox, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';

/**
 * How a process authenticates to NATS (docs/operations/walls.md). Each service connects as its own
 * user, whose permissions are generated from the subjects table (infra/nats/auth.conf). With none
 * of these set, it connects as before: the development and CI servers have no authentication.
 */
export const NatsAuthEnv = z.object({
  NATS_USER: z.string().min(1).optional(),
  NATS_PASSWORD: z.string().min(1).optional(),
  /** A CA bundle to verify the server with; setting it (or a client certificate) turns TLS on. */
  NATS_TLS_CA: z.string().min(1).optional(),
  /** A client certificate and its key, for a server that verifies clients (`tls { verify: true }`). */
  NATS_TLS_CERT: z.string().min(1).optional(),
  NATS_TLS_KEY: z.string().min(1).optional(),
});
export type NatsAuthEnv = z.infer<typeof NatsAuthEnv>;

/** What loadConfig also checks: a password needs its user, a certificate its key. */
export function natsAuthProblems(env: NatsAuthEnv): string[] {
  const problems: string[] = [];
  if (env.NATS_PASSWORD !== undefined && env.NATS_USER === undefined) problems.push('NATS_USER: required when NATS_PASSWORD is set');
  if (env.NATS_USER !== undefined && env.NATS_PASSWORD === undefined) problems.push('NATS_PASSWORD: required when NATS_USER is set');
  if ((env.NATS_TLS_CERT === undefined) !== (env.NATS_TLS_KEY === undefined)) {
    problems.push(`${env.NATS_TLS_CERT === undefined ? 'NATS_TLS_CERT' : 'NATS_TLS_KEY'}: NATS_TLS_CERT and NATS_TLS_KEY go together`);
  }
  return problems;
}

/**
 * The one place every NATS connection in the code gets its address and credentials from: the
 * services' request-reply server, their own connection, the gateway's, the CLIs'.
 *
 * With a user, the connection's inboxes are `_INBOX.<user>.…`: each user may subscribe to its own
 * inbox only, so no other user can read the replies it is sent (nats-permissions.ts).
 */
export function natsConnectionOptions(env: NatsAuthEnv & { NATS_URL: string }, name: string): ConnectionOptions {
  const opts: ConnectionOptions = { servers: env.NATS_URL.split(',').map((s) => s.trim()), name };
  if (env.NATS_USER !== undefined) {
    opts.user = env.NATS_USER;
    opts.pass = env.NATS_PASSWORD;
    opts.inboxPrefix = `_INBOX.${env.NATS_USER}`;
  }
  if (env.NATS_TLS_CA !== undefined || env.NATS_TLS_CERT !== undefined) {
    opts.tls = {
      ...(env.NATS_TLS_CA !== undefined ? { caFile: env.NATS_TLS_CA } : {}),
      ...(env.NATS_TLS_CERT !== undefined ? { certFile: env.NATS_TLS_CERT, keyFile: env.NATS_TLS_KEY } : {}),
    };
  }
  return opts;
}

/**
 * A new inbox subject under the connection's inbox prefix, for code that subscribes to replies
 * itself (rather than through `request`): `createInbox()` alone gives `_INBOX.<nuid>`, which a
 * NATS user may not subscribe to. The prefix is on the connection's options (not on the
 * NatsConnection interface), where the client's own `request` reads it too.
 */
export function connectionInbox(nc: NatsConnection): string {
  return createInbox((nc as NatsConnection & { options?: { inboxPrefix?: string } }).options?.inboxPrefix);
}
