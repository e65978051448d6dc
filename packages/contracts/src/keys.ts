import { z } from 'zod';

export const RESOURCES = ['contacts', 'journeys', 'users', 'keys', 'audit'] as const;
export const ACTIONS = ['read', 'write'] as const;
export const Scope = z.enum(RESOURCES.flatMap((r) => ACTIONS.map((a) => `${r}:${a}` as const)) as [
  `${(typeof RESOURCES)[number]}:${(typeof ACTIONS)[number]}`,
  ...`${(typeof RESOURCES)[number]}:${(typeof ACTIONS)[number]}`[],
]);
export type Scope = z.infer<typeof Scope>;
export const ALL_SCOPES: readonly Scope[] = Scope.options;

/** `write` implies `read` on the same resource. */
export function grants(granted: readonly string[], required: Scope): boolean {
  if (granted.includes(required)) return true;
  if (required.endsWith(':read')) return granted.includes(required.replace(/:read$/, ':write'));
  return false;
}

export const Environment = z.enum(['live', 'test']);
export type Environment = z.infer<typeof Environment>;

export const KeyStatus = z.enum(['active', 'disabled', 'expired', 'revoked']);
export type KeyStatus = z.infer<typeof KeyStatus>;

export const RATE_LIMIT_DEFAULTS = {
  burst_per_second: 60,
  per_minute: 100,
  per_hour: 5_000,
  daily: 100_000,
} as const;
export const RateLimitWindow = z.enum(['burst_per_second', 'per_minute', 'per_hour', 'daily']);
export type RateLimitWindow = z.infer<typeof RateLimitWindow>;

const limit = z.number().int().min(1).max(1_000_000_000);
export const RateLimitOverride = z.strictObject({
  burst_per_second: limit.optional(),
  per_minute: limit.optional(),
  per_hour: limit.optional(),
  daily: limit.optional(),
});
export type RateLimitOverride = z.infer<typeof RateLimitOverride>;
export const RateLimit = z.object({
  burst_per_second: z.number().int(),
  per_minute: z.number().int(),
  per_hour: z.number().int(),
  daily: z.number().int(),
});
export type RateLimit = z.infer<typeof RateLimit>;

/**
 * The tenant's ceiling: no key of the tenant may have a limit above it. Only the operator sets it
 * (`rate_limit_ceiling` on the admin tenant routes); these are the defaults.
 */
export const RATE_LIMIT_CEILING_DEFAULTS = {
  burst_per_second: 1_000,
  per_minute: 100_000,
  per_hour: 1_000_000,
  daily: 10_000_000,
} as const satisfies RateLimit;

/**
 * The limits a key runs under: its overrides over the defaults, each capped by the tenant's
 * ceiling (a ceiling lowered after a key was made still binds it).
 */
export function effectiveRateLimit(override: RateLimitOverride | null | undefined, ceiling: RateLimitOverride | null = null): RateLimit {
  const limits: RateLimit = { ...RATE_LIMIT_DEFAULTS, ...(override ?? {}) };
  const cap: RateLimit = { ...RATE_LIMIT_CEILING_DEFAULTS, ...(ceiling ?? {}) };
  for (const w of RateLimitWindow.options) if (limits[w] > cap[w]) limits[w] = cap[w];
  return limits;
}

/**
 * Small, flat, JSON-safe: what Stripe and Unkey allow on a key (50 keys of 40 characters, values
 * of 500), and within the 16 KiB budget of every free-form object (DESIGN, Sizes).
 */
export const Metadata = z
  .record(z.string().min(1).max(40), z.union([z.string().max(500), z.number(), z.boolean(), z.null()]))
  .refine((m) => Object.keys(m).length <= 50, { message: 'at most 50 metadata keys' })
  .refine((m) => new TextEncoder().encode(JSON.stringify(m)).length <= 16_384, { message: 'at most 16 KiB once serialised' });
export type Metadata = z.infer<typeof Metadata>;

/**
 * Metadata as events and read models hold it: the shape without the size budget, which binds
 * requests only. Keys made before the budget (up to about 27 KB) must still be read, revoked and
 * rebuilt: a stored event is never refused for a rule added after it was written.
 */
export const StoredMetadata = z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()]));

const KeyName = z.string().regex(/\S/, 'must not be blank').trim().min(1).max(200);
const ScopeList = z
  .array(Scope)
  .max(ALL_SCOPES.length)
  .refine((s) => new Set(s).size === s.length, { message: 'scopes must not repeat' })
  // The refine above, for the OpenAPI document (zod cannot tell JSON Schema what a refine does).
  .meta({ uniqueItems: true });

export const CreateKeyBody = z.strictObject({
  name: KeyName,
  scopes: ScopeList,
  /** Defaults to the calling key's own mode; a key may create keys of its own mode only. */
  environment: Environment.optional(),
  expires_at: z.iso.datetime({ offset: true }).nullish(),
  rate_limit: RateLimitOverride.nullish(),
  metadata: Metadata.nullish(),
});
export type CreateKeyBody = z.infer<typeof CreateKeyBody>;

export const UpdateKeyBody = z
  .strictObject({
    name: KeyName.optional(),
    scopes: ScopeList.optional(),
    enabled: z.boolean().optional(),
    rate_limit: RateLimitOverride.nullable().optional(),
    metadata: Metadata.nullable().optional(),
  })
  .refine((b) => Object.keys(b).length > 0, { message: 'give at least one field to change' });
export type UpdateKeyBody = z.infer<typeof UpdateKeyBody>;

export const RotateKeyBody = z.strictObject({
  grace_period_seconds: z.number().int().min(0).max(86_400).optional(),
});
export type RotateKeyBody = z.infer<typeof RotateKeyBody>;

export const RevokeKeyBody = z.strictObject({ reason: z.string().max(500).optional() });

export const KeyView = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string(),
  scopes: z.array(Scope),
  environment: Environment,
  status: KeyStatus,
  enabled: z.boolean(),
  created_at: z.string(),
  expires_at: z.string().nullable(),
  last_used_at: z.string().nullable(),
  /**
   * During a rotation grace: the last time an older secret was used (null: not since the
   * rotation). Always null outside a grace.
   */
  previous_secret_last_used_at: z.string().nullable(),
  rate_limit: RateLimit,
  metadata: Metadata,
  /** A tenant's root key: made by the operator only, replaced through the admin root-key route. */
  root: z.boolean(),
});
export type KeyView = z.infer<typeof KeyView>;

/** The answer that carries a secret: only the create and rotate responses. */
export const IssuedKey = KeyView.extend({ key: z.string() });
export type IssuedKey = z.infer<typeof IssuedKey>;
/**
 * The create and rotate responses as answered: `key` is null on a replay (same Idempotency-Key):
 * a secret is shown once; rotate for a usable one.
 */
export const IssuedKeyAnswer = KeyView.extend({ key: z.string().nullable() });
export type IssuedKeyAnswer = z.infer<typeof IssuedKeyAnswer>;

export const WhoAmI = z.object({
  api_key_id: z.string(),
  prefix: z.string(),
  tenant_id: z.string(),
  scopes: z.array(Scope),
  environment: Environment,
  rate_limit: RateLimit,
  expires_at: z.string().nullable(),
  /** Calls left in each window now, under the names `rate_limit` uses. */
  remaining: z.object({
    burst_per_second: z.number().int().min(0),
    per_minute: z.number().int().min(0),
    per_hour: z.number().int().min(0),
    daily: z.number().int().min(0),
  }),
});
export type WhoAmI = z.infer<typeof WhoAmI>;

/**
 * What identity tells the gateway about one prefix: enough to check the hash, status, scopes and
 * limits without another call. Carries the hash of the secret (never the secret) and only crosses
 * the internal bus; it is never an event and never an HTTP body.
 */
export const VerificationRecord = z.object({
  key_id: z.string(),
  tenant_id: z.string(),
  prefix: z.string(),
  environment: Environment,
  scopes: z.array(Scope),
  status: KeyStatus,
  expires_at: z.string().nullable(),
  /** Set while a rotated-away secret still works; after it, this prefix is refused. */
  valid_until: z.string().nullable(),
  rate_limit: RateLimit,
  hash: z.string(),
  /**
   * Look-up ids of the key's other secrets that still worked at the look-up (inside a rotation
   * grace): a gateway that learns of a change from the event stream drops those too.
   */
  siblings: z.array(z.string()).default([]),
});
export type VerificationRecord = z.infer<typeof VerificationRecord>;

export const VerifyRequest = z.object({ lookup_id: z.string().regex(/^[a-z0-9]{8}$/) });
export const VerifyReply = z.object({ record: VerificationRecord.nullable() });
export type VerifyReply = z.infer<typeof VerifyReply>;

/** Identity → every gateway: these look-up ids (the 8 characters of a prefix) are stale. */
export const Invalidation = z.object({
  lookup_ids: z.array(z.string()),
  key_id: z.string(),
  /** Set when something every key of the tenant depends on changed (its ceiling): drop them all. */
  tenant_id: z.string().optional(),
  /** A member was removed, re-roled or changed their password: drop every cached session of theirs. */
  member_id: z.string().optional(),
});
export type Invalidation = z.infer<typeof Invalidation>;
export const InvalidationAck = z.object({ gateway_id: z.string() });
export const GatewayHeartbeat = z.object({ gateway_id: z.string(), at: z.string() });
export type GatewayHeartbeat = z.infer<typeof GatewayHeartbeat>;
