import { z } from 'zod';
import { Actor } from './events';

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
