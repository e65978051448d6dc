import { z } from 'zod';
import { ErrorBody } from './errors';
import { Actor } from './events';

/** `Idempotency-Key`: 8 to 255 printable ASCII characters (space to tilde). */
export const IDEMPOTENCY_KEY_PATTERN = /^[\x20-\x7e]{8,255}$/;
/** How long a key's first answer is replayed. */
export const IDEMPOTENCY_WINDOW_HOURS = 24;

/** Who is asking, as established by the gateway from a verified key (or the operator token). */
export const RequestContext = z.object({
  tenant_id: z.string(),
  actor: Actor,
  request_id: z.string(),
  /** Scopes of the calling key: services that need finer checks (e.g. logs) read them here. */
  scopes: z.array(z.string()).default([]),
  /**
   * The mode of the calling key (`kw_live_` or `kw_test_`): a key acts on its own mode's data and
   * keys only. Absent for the operator and the system, who act on both.
   */
  environment: z.enum(['live', 'test']).optional(),
  /**
   * When a signed-in member calls (actor `member`): the hash of their session, so "end my other
   * sessions" can keep this one. Never the session id.
   */
  session_hash: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  /**
   * The client's `Idempotency-Key` on a POST, validated by the gateway, with a hash of what the
   * request asks (route, path parameters, canonical body): the owning service keeps the record
   * (tenant, mode, key) → first answer in its own database, in the resource's transaction.
   */
  idempotency: z.object({ key: z.string().regex(IDEMPOTENCY_KEY_PATTERN), body_hash: z.string().regex(/^[0-9a-f]{64}$/) }).optional(),
});
export type RequestContext = z.infer<typeof RequestContext>;

/** Every routed request crosses NATS in this shape; each service validates its own parts. */
export const RpcRequest = z.object({
  ctx: RequestContext,
  params: z.record(z.string(), z.string()).default({}),
  query: z.record(z.string(), z.unknown()).default({}),
  body: z.unknown().optional(),
});
export type RpcRequest = z.infer<typeof RpcRequest>;

/** A first answer as a service keeps it for replay: the response, or a stored client error. */
export const IdempotentOutcome = z.union([z.object({ ok: z.literal(true), response: z.unknown() }), z.object({ ok: z.literal(false), error: ErrorBody })]);
export type IdempotentOutcome = z.infer<typeof IdempotentOutcome>;

/**
 * What a handler returns when it answers a retried POST with the first call's answer. The
 * service's RPC server unwraps it into the reply, marked `replayed: true` beside `response` (or
 * `err`), which the gateway answers with `Idempotent-Replayed: true`.
 */
export class IdempotentReplay {
  constructor(readonly outcome: IdempotentOutcome) {}
}
