import { BaseEnv } from '@keyway/runtime';
import { z } from 'zod';

export const IdentityEnv = BaseEnv.extend({
  /** How long identity waits for gateways to acknowledge an invalidation before answering anyway. */
  INVALIDATION_WAIT_MS: z.coerce.number().int().min(0).max(10_000).default(1_000),
  /** A gateway not heard from for this long is no longer waited for. */
  GATEWAY_LIVENESS_MS: z.coerce.number().int().min(500).max(60_000).default(3_000),
  /** How often the relay polls when no NOTIFY woke it. */
  RELAY_POLL_MS: z.coerce.number().int().min(10).max(60_000).default(500),
  RELAY_ENABLED: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  EXPIRY_SWEEP_MS: z.coerce.number().int().min(100).max(3_600_000).default(5_000),
  /** Attempts at an append that loses an optimistic-concurrency race before answering 409. */
  APPEND_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(5),
});
export type IdentityConfig = z.infer<typeof IdentityEnv>;
export const SERVICE = 'identity';
export const IDENTITY_CONFIG = Symbol('IDENTITY_CONFIG');
export const IDENTITY_DATABASE_URL = Symbol('IDENTITY_DATABASE_URL');
