import type { Actor, Environment, RequestContext } from '@keyway/contracts';

/** Who acts, on which tenant and in which mode: every read and write is scoped by all three. */
export interface Caller {
  tenantId: string;
  /** The calling key's mode (DESIGN "Test mode"); `live` when the context names none (operator, system). */
  mode: Environment;
  actor: Actor;
  /** A POST's `Idempotency-Key` and request hash, as the gateway forwards them. */
  idempotency: RequestContext['idempotency'];
}

export function callerOf(ctx: RequestContext): Caller {
  return { tenantId: ctx.tenant_id, mode: ctx.environment ?? 'live', actor: ctx.actor, idempotency: ctx.idempotency };
}

/** What `@keyway/database`'s `idempotent()` reads: the record is scoped by tenant and mode. */
export function idempotencyScope(caller: Caller): Pick<RequestContext, 'tenant_id' | 'environment' | 'idempotency'> {
  return { tenant_id: caller.tenantId, environment: caller.mode, idempotency: caller.idempotency };
}
