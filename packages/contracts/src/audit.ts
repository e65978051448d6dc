import { z } from 'zod';
import { Actor, KeyEventType } from './events';

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
