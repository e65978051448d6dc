import { eventSubject, parseKeyEvent, type KeyEvent } from '@keyway/contracts';
import { jetStreamContext, startDurableConsumer, type RunningConsumer } from '@keyway/messaging';
import { InjectNats } from '@keyway/runtime';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { NatsConnection } from '@nats-io/transport-node';
import { DataSource } from 'typeorm';
import { IDENTITY_CONFIG, type IdentityConfig } from '../config';

/**
 * The last-used projection: `used` events (aggregated by the gateways) move `last_used_at`
 * forward, never back, so a redelivered or late event changes nothing. A use older than the
 * last rotation is ignored: after a rotation `last_used_at` starts again from null.
 */
@Injectable()
export class LastUsedConsumer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(LastUsedConsumer.name);
  private consumer: RunningConsumer | undefined;

  constructor(
    @InjectNats() private readonly nc: NatsConnection,
    private readonly ds: DataSource,
    @Inject(IDENTITY_CONFIG) private readonly config: IdentityConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const ctx = await jetStreamContext(this.nc);
    this.consumer = await startDurableConsumer<KeyEvent>({
      ctx,
      stream: this.config.KEYWAY_STREAM,
      durable: 'identity-last-used',
      filterSubject: eventSubject('used'),
      parse: parseKeyEvent,
      handle: (e) => this.apply(e),
      logger: { info: (o, m) => this.logger.log({ ...o, msg: m }), warn: (o, m) => this.logger.warn({ ...o, msg: m }), error: (o, m) => this.logger.error({ ...o, msg: m }) },
    });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.consumer?.stop();
  }

  async apply(e: KeyEvent): Promise<void> {
    if (e.type !== 'used') return;
    await this.ds.query(
      `UPDATE keys SET last_used_at = $2
        WHERE id = $1 AND tenant_id = $3
          AND (last_used_at IS NULL OR last_used_at < $2)
          AND (rotated_at IS NULL OR rotated_at <= $2)`,
      [e.key_id, e.data.last_used_at, e.tenant_id],
    );
  }
}
