import { eventSubject, EventVersionError, parseKeyEvent } from '@keyway/contracts';
import { DurableConsumer, jetStreamContext, type BatchItem } from '@keyway/messaging';
import { InjectNats, minimalLogger } from '@keyway/runtime';
import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import type { NatsConnection } from '@nats-io/transport-node';
import { DataSource } from 'typeorm';
import { IDENTITY_CONFIG, type IdentityConfig } from '../config';

/** One `used` event, reduced to what the projection writes. */
interface LastUse {
  keyId: string;
  tenantId: string;
  /** ISO 8601, normalised here so Postgres takes every value of a batch. */
  at: string;
}

/**
 * Validates a message on `keyway.keys.used`. Beyond the contract, refuses what Postgres would
 * refuse (a time it cannot read, NUL in text), since one such value would fail the whole batch's
 * statement; refused here, only that message is terminated.
 */
export function parseLastUse(raw: unknown): LastUse {
  const e = parseKeyEvent(raw);
  if (e.type !== 'used') throw new Error(`a ${e.type} event on the used subject`);
  const at = Date.parse(e.data.last_at);
  if (!(at >= 0)) throw new Error(`last_used_at is not a time after 1970: ${JSON.stringify(e.data.last_at).slice(0, 40)}`);
  if (e.key_id.includes('\u0000') || e.tenant_id.includes('\u0000')) throw new Error('a NUL character in key_id or tenant_id');
  return { keyId: e.key_id, tenantId: e.tenant_id, at: new Date(at).toISOString() };
}

// One statement for the whole batch. Per key, only the latest use can move `last_used_at`: if it
// is older than the stored value or than the last rotation, every earlier use of the batch is too,
// so the result is the same as applying the events one by one. The rows are locked in key order
// first, so two replicas updating overlapping keys queue instead of deadlocking.
const APPLY_BATCH = `
  WITH latest AS (
    SELECT id, tenant_id, max(at) AS at
      FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(id, tenant_id, at)
     GROUP BY id, tenant_id
  ), locked AS (
    SELECT k.id, latest.at
      FROM keys k JOIN latest ON k.id = latest.id AND k.tenant_id = latest.tenant_id
     WHERE (k.last_used_at IS NULL OR k.last_used_at < latest.at)
       AND (k.rotated_at IS NULL OR k.rotated_at <= latest.at)
     ORDER BY k.id
       FOR UPDATE OF k
  )
  UPDATE keys k SET last_used_at = locked.at
    FROM locked
   WHERE k.id = locked.id
     AND (k.last_used_at IS NULL OR k.last_used_at < locked.at)
     AND (k.rotated_at IS NULL OR k.rotated_at <= locked.at)`;

/**
 * The last-used projection: `used` events (aggregated by the gateways) move `last_used_at`
 * forward, never back, so a redelivered or late event changes nothing. A use older than the
 * last rotation is ignored: after a rotation `last_used_at` starts again from null.
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
    @Inject(IDENTITY_CONFIG) private readonly config: IdentityConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    // Identity owns the stream (the relay ensures it at module init), so it exists by now.
    this.consumer = await DurableConsumer.start<LastUse>({
      ctx: await jetStreamContext(this.nc),
      stream: this.config.KEYWAY_STREAM,
      durable: 'identity-last-used',
      filterSubject: eventSubject('used'),
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
    await this.ds.query(APPLY_BATCH, [items.map((i) => i.value.keyId), items.map((i) => i.value.tenantId), items.map((i) => i.value.at)]);
  }
}
