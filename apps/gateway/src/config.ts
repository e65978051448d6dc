import { randomLowerAlnum } from '@keyway/contracts';
import { BaseEnv } from '@keyway/runtime';
import { z } from 'zod';

export const SERVICE = 'gateway';

const ms = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** Everything the gateway reads from the environment, validated once at boot. */
export const GatewayEnv = BaseEnv.extend({
  PORT: z.coerce.number().int().min(0).max(65_535).default(3000),
  /**
   * The operator listener: `/admin/v1/*` and `/metrics` answer here only, never on PORT (there
   * `/admin/v1` is an unknown route, 404). Keep it off the public network: loopback in `npm start`,
   * its own Service in k8s.
   */
  ADMIN_PORT: z.coerce.number().int().min(0).max(65_535).default(3100),
  /** The operator listener's address; unset: HOST. */
  ADMIN_HOST: z.string().min(1).optional(),
  /** Unset: limits are counted in this process only; set: shared by every replica. */
  REDIS_URL: z.string().url().optional(),
  REDIS_PREFIX: z.string().default('keyway:'),
  /** Unset: `/admin/v1` answers 503 (the operator API is switched off, not open). */
  KEYWAY_ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  RPC_TIMEOUT_MS: ms(50, 120_000).default(5_000),
  /** How long a verified key's record is trusted without asking identity again. */
  CACHE_TTL_MS: ms(0, 3_600_000).default(60_000),
  /** How long "no such key" is remembered, so a flood of unknown prefixes doesn't reach identity. */
  NEGATIVE_CACHE_TTL_MS: ms(0, 600_000).default(5_000),
  CACHE_MAX_ENTRIES: ms(1, 10_000_000).default(200_000),
  /** After NATS has been silent this long, cached records are no longer trusted (requests get 503). */
  NATS_STALE_AFTER_MS: ms(100, 600_000).default(1_000),
  HEARTBEAT_INTERVAL_MS: ms(50, 60_000).default(1_000),
  /**
   * A rate-limit call to Redis slower than this is answered from this replica's memory instead
   * (limits then hold per replica until Redis answers again). Small by default so a slow Redis
   * adds little latency; a loaded test machine may want more.
   */
  RATE_LIMIT_REDIS_TIMEOUT_MS: ms(5, 60_000).default(50),
  /** How often aggregated use is published as `used` events (count, first and last use per key). */
  USAGE_FLUSH_MS: ms(50, 600_000).default(1_000),
  GATEWAY_ID: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - only, at most 64')
    .default(() => `gw_${randomLowerAlnum(12)}`),
  /** One log line per request at info level; off by default on the hot path (see README). */
  HTTP_LOGS: z
    .enum(['true', 'false', '1', '0'])
    .default('false')
    .transform((v) => v === 'true' || v === '1'),
  BODY_LIMIT_BYTES: ms(1, 64 * 1024 * 1024).default(1024 * 1024),
  /**
   * Calls to `/admin/v1/*` per client address and minute, counted by each replica (token guessing
   * and runaway scripts stop here; legitimate operators make a handful). Tests and benches that
   * create many tenants raise it.
   */
  ADMIN_RATE_LIMIT_PER_MINUTE: ms(1, 1_000_000).default(60),
  /**
   * The session cookie's `Secure` attribute. On unless set to `false`, which only local http
   * development needs (a browser drops a Secure cookie sent over plain http).
   */
  SESSION_COOKIE_SECURE: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
  /**
   * `true`: the cookie is `__Host-kw_session` (with Secure), which a sibling subdomain or a
   * plain-http answer cannot plant or shadow. Off by default, since DESIGN names the cookie
   * `kw_session`: turn it on where the gateway is served only over https.
   */
  SESSION_COOKIE_HOST_PREFIX: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
  /**
   * Sign-in attempts per client address and minute, counted by each replica, whatever the email:
   * a second bound beside identity's back-off per (email, address), against one address trying
   * many emails.
   */
  SIGN_IN_RATE_LIMIT_PER_MINUTE: ms(1, 1_000_000).default(60),
  /** How long a session's record is trusted without asking identity again (which also slides its idle end). */
  SESSION_CACHE_TTL_MS: ms(0, 60_000).default(30_000),
  /**
   * Unset: the client address is the socket's peer. Set behind a proxy: `true` (trust every hop)
   * or the proxies' addresses/CIDRs, comma-separated; then X-Forwarded-For gives the client
   * address (sign-in back-off, the operator API's limit).
   */
  TRUST_PROXY: z
    .string()
    .regex(/^(true|false|[0-9a-fA-F.:/]+(,[0-9a-fA-F.:/]+)*)$/, 'true, false, or comma-separated addresses/CIDRs')
    .optional()
    .transform((v): boolean | string[] => (v === undefined || v === 'false' ? false : v === 'true' ? true : v.split(','))),
});
export type GatewayConfig = z.infer<typeof GatewayEnv>;
