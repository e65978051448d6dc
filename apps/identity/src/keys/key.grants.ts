import { effectiveRateLimit, grants, RateLimitWindow, type Environment, type RateLimit, type RateLimitOverride, type Scope } from '@keyway/contracts';
import { KeyError } from './key.errors';

/**
 * Who gives a grant, when it is a key (DESIGN, "Grants"): its scopes, mode and id. The operator
 * and the system (expiry) are not grantors: they act without these bounds.
 */
export interface Grantor {
  key_id: string;
  scopes: readonly string[];
  environment: Environment;
}

/**
 * A key can do only what it was granted (OWASP API5/API3): it may give only scopes it holds, may
 * not touch a key that holds a scope it lacks, and nobody's limits may pass the tenant's ceiling.
 * Pure: the decider calls these, the handler supplies the grantor and the ceiling.
 */

/** Every scope in `scopes` must be one the grantor holds (`write` covers `read`). */
function requireHeld(by: Grantor | null, scopes: readonly Scope[], what: (scope: Scope) => string): void {
  if (by === null) return;
  const missing = scopes.find((s) => !grants(by.scopes, s));
  if (missing !== undefined) throw new KeyError('insufficient_scope', what(missing), { required_scope: missing });
}

/** A key may manage only keys whose every scope it holds itself. */
export function requireMayManage(by: Grantor | null, target: { scopes: readonly Scope[]; prefix: string }): void {
  requireHeld(by, target.scopes, (s) => `Key ${target.prefix} holds ${s}, which the calling key lacks: a key may change only keys whose scopes it holds`);
}

export function requireMayGrant(by: Grantor | null, scopes: readonly Scope[]): void {
  requireHeld(by, scopes, (s) => `A key may grant only scopes it holds: the calling key lacks ${s}`);
}

/** A test key makes test keys, a live key live keys. */
export function requireOwnMode(by: Grantor | null, environment: Environment): void {
  if (by === null || by.environment === environment) return;
  throw new KeyError('forbidden', `A ${by.environment} key may create ${by.environment} keys only, not ${environment} keys`, {
    details: [{ field: 'environment', message: `must be ${by.environment}, the calling key's mode` }],
  });
}

/** No explicit limit above the tenant's ceiling. */
export function requireWithinCeiling(limits: RateLimitOverride | null | undefined, ceiling: RateLimit): void {
  if (!limits) return;
  for (const w of RateLimitWindow.options) {
    const v = limits[w];
    if (v !== undefined && v > ceiling[w]) {
      throw new KeyError('forbidden', `rate_limit.${w} may be at most ${ceiling[w]}, the tenant's ceiling`, {
        details: [{ field: `rate_limit.${w}`, message: `at most ${ceiling[w]} (the tenant's ceiling; only the operator can raise it)` }],
      });
    }
  }
}

/** A key may lower its own limits, never raise them: compared window by window, as enforced. */
export function requireNotRaisingOwn(
  by: Grantor | null,
  target: { id: string; rate_limit: RateLimitOverride | null },
  next: RateLimitOverride | null,
  ceiling: RateLimit,
): void {
  if (by === null || by.key_id !== target.id) return;
  const before = effectiveRateLimit(target.rate_limit, ceiling);
  const after = effectiveRateLimit(next, ceiling);
  for (const w of RateLimitWindow.options) {
    if (after[w] > before[w]) {
      throw new KeyError('forbidden', `A key may not raise its own limits: rate_limit.${w} would go from ${before[w]} to ${after[w]}`, {
        details: [{ field: `rate_limit.${w}`, message: `at most ${before[w]}, this key's current limit` }],
      });
    }
  }
}
