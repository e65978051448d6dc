import { deadLetterSubject, EventVersionError, parseKeyEvent, STREAMS, USAGE_SUBJECT } from '@keyway/contracts';
import { DurableConsumer, jetStreamContext, type BatchItem } from '@keyway/messaging';
import { InjectNats, minimalLogger } from '@keyway/runtime';
import { Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import type { NatsConnection } from '@nats-io/transport-node';
import { DataSource } from 'typeorm';

/** One `used` event, reduced to what the projection writes. */
interface LastUse {
  keyId: string;
  tenantId: string;
  /** ISO 8601, normalised here so Postgres takes every value of a batch. */
  at: string;
  /** `previous`: a secret older than the current one, inside a rotation grace. */
  secret: 'current' | 'previous';
}

/**
 * Validates a message on `keyway.keys.used` (any schema version: upcast by the contract; v1 is a
 * use of the current secret). Beyond the contract, refuses what Postgres would refuse (a time it
 * cannot read, NUL in text), since one such value would fail the whole batch's statement; refused
 * here, only that message is dead-lettered.
 */
export function parseLastUse(raw: unknown): LastUse {
  const e = parseKeyEvent(raw);
  if (e.type !== 'used') throw new Error(`a ${e.type} event on the used subject`);
  const at = Date.parse(e.data.last_at);
  if (!(at >= 0)) throw new Error(`last_at is not a time after 1970: ${JSON.stringify(e.data.last_at).slice(0, 40)}`);
  if (e.key_id.includes('\u0000') || e.tenant_id.includes('\u0000')) throw new Error('a NUL character in key_id or tenant_id');
  return { keyId: e.key_id, tenantId: e.tenant_id, at: new Date(at).toISOString(), secret: e.data.secret };
}

// One statement for the whole batch. Per key and secret kind, only the latest use can move its
// time: if it is older than the stored value or than the last rotation, every earlier use of the
// batch is too, so the result is the same as applying the events one by one (in any order, any
// number of times). `current` moves only last_used_at, `previous` only
// previous_secret_last_used_at. The rows are locked in key order first, so two replicas updating
// overlapping keys queue instead of deadlocking.
const MOVES = (column: string, at: string) => `(${at} IS NOT NULL AND (k.${column} IS NULL OR k.${column} < ${at}) AND (k.rotated_at IS NULL OR k.rotated_at <= ${at}))`;
const APPLY_BATCH = `
  WITH latest AS (
    SELECT id, tenant_id, max(at) FILTER (WHERE NOT previous) AS cur, max(at) FILTER (WHERE previous) AS prev
      FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::boolean[]) AS u(id, tenant_id, at, previous)
     GROUP BY id, tenant_id
  ), locked AS (
    SELECT k.id, latest.cur, latest.prev
      FROM keys k JOIN latest ON k.id = latest.id AND k.tenant_id = latest.tenant_id
     WHERE ${MOVES('last_used_at', 'latest.cur')} OR ${MOVES('previous_secret_last_used_at', 'latest.prev')}
     ORDER BY k.id
       FOR UPDATE OF k
  )
  UPDATE keys k SET
         last_used_at = CASE WHEN ${MOVES('last_used_at', 'locked.cur')} THEN locked.cur ELSE k.last_used_at END,
         previous_secret_last_used_at = CASE WHEN ${MOVES('previous_secret_last_used_at', 'locked.prev')} THEN locked.prev ELSE k.previous_secret_last_used_at END
    FROM locked
   WHERE k.id = locked.id
     AND (${MOVES('last_used_at', 'locked.cur')} OR ${MOVES('previous_secret_last_used_at', 'locked.prev')})`;

/** The last-used projection's durable consumer on `KEYWAY_USAGE`. */
export const LAST_USED_DURABLE = 'identity-last-used';

/**
 * The last-used projection: `used` events (aggregated by the gateways, stream `KEYWAY_USAGE`) move
 * `last_used_at` (the current secret) or `previous_secret_last_used_at` (an older secret, in a
 * grace) forward, never back, so a redelivered or late event changes nothing. A use older than
 * the last rotation is ignored: after a rotation both start again from null. A message that can
 * never be applied goes to `KEYWAY_DLQ` with its reason.
 *
 * A batch is applied in one statement rather than event by event: every gateway sends one event
 * per key it saw used per flush, so the rate grows with live keys × gateways, and one round trip
 * per batch keeps the projection ahead of that on the same connection pool the key commands use.
 */
@Injectable()
export class LastUsedConsumer implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(LastUsedConsumer.name);
  private consumer: DurableConsumer<LastUse> | undefined;

  constructor(
    @InjectNats() private readonly nc: NatsConnection,
    private readonly ds: DataSource,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    // Identity owns the stream (the relay ensures it at module init), so it exists by now.
    this.consumer = await DurableConsumer.start<LastUse>({
      ctx: await jetStreamContext(this.nc),
      stream: STREAMS.usage.name,
      durable: LAST_USED_DURABLE,
      filterSubject: USAGE_SUBJECT,
      deadLetterSubject: deadLetterSubject(STREAMS.usage.name, LAST_USED_DURABLE),
      parse: parseLastUse,
      parseRetryable: (err) => err instanceof EventVersionError,
      handle: (items) => this.apply(items),
      logger: minimalLogger(this.logger),
    });
  }

  /** Before the NATS connection drains and the pool closes: the batch in hand is written and acked. */
  async beforeApplicationShutdown(): Promise<void> {
    await this.consumer?.stop();
  }

  private async apply(items: ReadonlyArray<BatchItem<LastUse>>): Promise<void> {
    const v = items.map((i) => i.value);
    await this.ds.query(APPLY_BATCH, [v.map((u) => u.keyId), v.map((u) => u.tenantId), v.map((u) => u.at), v.map((u) => u.secret === 'previous')]);
  }
}
