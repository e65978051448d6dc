import { z } from 'zod';
import { Actor, KeyEventType } from './events';
import { PageQuery } from './pagination';

export const AuditEntry = z.object({
  id: z.string(),
  type: KeyEventType,
  occurred_at: z.string(),
  key_id: z.string(),
  prefix: z.string(),
  actor: Actor,
  data: z.record(z.string(), z.unknown()),
});
export type AuditEntry = z.infer<typeof AuditEntry>;

/** `GET /v1/audit-events` filters (with the page). */
export const AuditEventsQuery = PageQuery.extend({
  key_id: z.string().min(1).max(100).optional(),
  type: KeyEventType.optional(),
  actor_type: Actor.shape.type.optional(),
  actor_id: z.string().min(1).max(100).optional(),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
});
export type AuditEventsQuery = z.infer<typeof AuditEventsQuery>;

/** `GET /v1/audit-events/verify`: the walk of the tenant's hash chain. */
export const AuditVerification = z.union([
  z.object({ verified: z.literal(true), entries: z.number().int(), head: z.string().nullable() }),
  z.object({ verified: z.literal(false), first_bad: z.object({ id: z.string().nullable(), reason: z.string() }) }),
]);
export type AuditVerification = z.infer<typeof AuditVerification>;
