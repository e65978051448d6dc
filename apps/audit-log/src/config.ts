import { BaseEnv } from '@keyway/runtime';
import { STREAMS } from '@keyway/contracts';
import { z } from 'zod';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const AuditLogEnv = BaseEnv.extend({
  /**
   * Most events written in one INSERT; also how many the consumer holds un-acked before it waits.
   * A backlog drains in batches this size: over many tenants, a larger batch moves each tenant's
   * head once for more of its rows (3,000 over 1,000 tenants: 0.32 head updates a row, against
   * 0.63 at 1,000).
   */
  AUDIT_BATCH_MAX: int(1, 5_000).default(3_000),
  /**
   * Batches handled at once. With the chain on, batches are written one at a time in stream order
   * (each linked in the statement that stores it), and the second writer's batch has its links
   * computed while the first is written (see InsertLinker). More than 2 only take smaller batches.
   */
  AUDIT_WRITERS: int(1, 8).default(2),
  /**
   * `on`: one replica at a time writes the trail (a Postgres session lock; see WriterLease), the
   * others stand by and take over within AUDIT_WRITER_LEASE_POLL_MS of its loss. `off`: every
   * replica writes (correct, slower: their batches interleave).
   */
  AUDIT_WRITER_LEASE: z.enum(['on', 'off']).default('on'),
  AUDIT_WRITER_LEASE_POLL_MS: int(50, 60_000).default(1_000),
  /** How long the consumer lets a short batch fill before writing it (each batch is a transaction). */
  AUDIT_BATCH_LINGER_MS: int(0, 1_000).default(5),
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
  /**
   * The HMAC key of every tenant's hash chain (src/chain): from the environment only, never stored
   * in the database, so whoever can write the table cannot recompute the chain. Required when
   * NODE_ENV=production; elsewhere (`npm start`, a laptop) a fixed development key is used, with
   * a warning at boot. Tests generate one per run. Changing it makes every existing chain fail
   * verification: it is for good, like the data it protects.
   */
  AUDIT_CHAIN_KEY: z.string().min(32, 'at least 32 characters (e.g. openssl rand -hex 32)').optional(),
  NODE_ENV: z.string().optional(),
  /** `off`: rows are stored, never sealed, linked or published. Only for the bench's cost ratio. */
  AUDIT_CHAIN: z.enum(['on', 'off']).default('on'),
  /** How often the linker looks for rows stored by any replica when nothing woke it. */
  AUDIT_LINK_IDLE_MS: int(10, 60_000).default(500),
  /**
   * The shortest gap between two linking rounds: what is acked meanwhile is linked in one round
   * (a round costs the same for one row as for hundreds). Adds at most this much to publish → linked.
   */
  AUDIT_LINK_PACE_MS: int(0, 1_000).default(10),
  /** Each tenant's head is published at most this often (and on every change, coalesced). */
  AUDIT_HEAD_PUBLISH_MS: int(10, 60_000).default(1_000),
  /** `off`: heads are not published (the rebuild compares with the published heads, never adds to them). */
  AUDIT_HEADS_PUBLISH: z.enum(['on', 'off']).default('on'),
  /**
   * How many of each tenant's latest heads KEYWAY_AUDIT_HEADS keeps, for good (the stream's
   * per-subject limit). Verify reads only the latest; unbounded, 1,000 busy tenants added 86
   * million messages a day to a stream that never ages. Above 1, nats-server 2.9's file store
   * scans for a subject's next-oldest head each time it drops one, a cost that grows with the
   * tenants publishing: 234 µs of server CPU per head with 1,000 tenants and 417 µs with 3,000,
   * against 30–45 µs at 1 (`npm run bench -- audit-heads-stream`).
   */
  AUDIT_HEADS_KEPT: int(1, 1_000_000).default(1),
  /** The stream the heads go to; audit-log owns it. Tests and benches on a shared server rename it. */
  AUDIT_HEADS_STREAM: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and - only').default(STREAMS.auditHeads.name),
}).superRefine((c, ctx) => {
  if (c.NODE_ENV === 'production' && c.AUDIT_CHAIN_KEY === undefined) {
    ctx.addIssue({ code: 'custom', path: ['AUDIT_CHAIN_KEY'], message: 'is required in production (the audit chain key, at least 32 characters)' });
  }
  if (c.NODE_ENV === 'production' && c.AUDIT_CHAIN === 'off') {
    ctx.addIssue({ code: 'custom', path: ['AUDIT_CHAIN'], message: 'off is for benchmarks only, never in production' });
  }
});
export type AuditLogConfig = z.infer<typeof AuditLogEnv>;
export const SERVICE = 'audit-log';

/**
 * The key used when AUDIT_CHAIN_KEY is unset outside production: public, so a chain made with it
 * proves nothing; the service says so at boot.
 */
const DEVELOPMENT_CHAIN_KEY = 'keyway-development-audit-chain-key-not-secret';
export const chainKeyOf = (c: AuditLogConfig): string => c.AUDIT_CHAIN_KEY ?? DEVELOPMENT_CHAIN_KEY;
