import type { Actor, Environment, RequestContext } from '@keyway/contracts';

/** Who acts, on which tenant and in which mode: every read and write is scoped by all three. */
export interface Caller {
  tenantId: string;
  /** The calling key's mode (DESIGN "Test mode"); `live` when the context names none (operator, system). */
  mode: Environment;
  actor: Actor;
}

export function callerOf(ctx: RequestContext): Caller {
  return { tenantId: ctx.tenant_id, mode: ctx.environment ?? 'live', actor: ctx.actor };
}
