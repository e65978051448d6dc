import type { Actor, Environment, RequestContext } from '@keyway/contracts';
import { traceOf, type TraceContext } from '@keyway/runtime';

/** Who acts, on which tenant and in which mode: every read and write is scoped by all three. */
export interface Caller {
  tenantId: string;
  /** The calling key's mode (DESIGN "Test mode"); `live` when the context names none (operator, system). */
  mode: Environment;
  actor: Actor;
  /** A POST's `Idempotency-Key` and request hash, as the gateway forwards them. */
  idempotency: RequestContext['idempotency'];
  /** The request's trace (from the gateway's `traceparent`), passed on to contacts and into log lines. */
  trace?: TraceContext;
  /** The customer's request id, for log lines. */
  requestId?: string;
}

export function callerOf(ctx: RequestContext): Caller {
  const trace = traceOf(ctx);
  return { tenantId: ctx.tenant_id, mode: ctx.environment ?? 'live', actor: ctx.actor, idempotency: ctx.idempotency, ...(trace && { trace }), ...(ctx.request_id !== undefined && { requestId: ctx.request_id }) };
}

/** What `@keyway/database`'s `idempotent()` reads: the record is scoped by tenant and mode. */
export function idempotencyScope(caller: Caller): Pick<RequestContext, 'tenant_id' | 'environment' | 'idempotency'> {
  return { tenant_id: caller.tenantId, environment: caller.mode, idempotency: caller.idempotency };
}
