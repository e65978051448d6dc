import { BaseEnv } from '@keyway/runtime';
import { z } from 'zod';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const AuditLogEnv = BaseEnv.extend({
  /** Most events written in one INSERT; also how many the consumer holds un-acked before it waits. */
  AUDIT_BATCH_MAX: int(1, 5_000).default(1_000),
  /** Batches written at once, each on its own pooled connection: their commits (fsyncs) overlap. */
  AUDIT_WRITERS: int(1, 8).default(4),
  /** Deliveries before a message that keeps failing is terminated (and logged). */
  AUDIT_MAX_DELIVER: int(1, 100).default(10),
  /** Delay before a failed batch's first redelivery; it doubles with each delivery, up to the max. */
  AUDIT_NAK_DELAY_MS: int(0, 600_000).default(1_000),
  AUDIT_NAK_DELAY_MAX_MS: int(0, 3_600_000).default(60_000),
  AUDIT_ACK_WAIT_MS: int(1_000, 600_000).default(30_000),
  /**
   * How long boot waits for identity, the stream's owner, to create KEYWAY_STREAM before it fails
   * with a message naming both. `npm start` and compose start the services together.
   */
  AUDIT_STREAM_WAIT_MS: int(0, 600_000).default(60_000),
  /** Shared by every replica: the stream's consumer of key events for this service. */
  AUDIT_DURABLE: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and - only').default('audit-log'),
});
export type AuditLogConfig = z.infer<typeof AuditLogEnv>;
export const SERVICE = 'audit-log';
