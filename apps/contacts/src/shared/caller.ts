import type { Actor, Environment, RequestContext } from '@keyway/contracts';

/** Who acts, on which tenant and in which mode: every read and write is scoped by all three. */
export interface Caller {
  tenantId: string;
  /** A test key's data is the tenant's test data; the operator, the system and older callers act live. */
  mode: Environment;
  actor: Actor;
  /** The context as the gateway sent it, for `idempotent` (which scopes keys by its own reading of the mode). */
  request: Pick<RequestContext, 'tenant_id' | 'environment' | 'idempotency'>;
}

export function callerOf(ctx: RequestContext): Caller {
  return { tenantId: ctx.tenant_id, mode: ctx.environment ?? 'live', actor: ctx.actor, request: ctx };
}

/**
 * The mode as a SQL literal. Inlined, not bound, so the planner always sees it and can use the
 * per-mode partial indexes (a generic plan with a parameter could not). Only these two values exist.
 */
export function modeLiteral(mode: Environment): string {
  switch (mode) {
    case 'live':
      return `'live'`;
    case 'test':
      return `'test'`;
  }
}
