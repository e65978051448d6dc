import { STREAMS } from '@keyway/contracts';
import { ensureStream, jetStreamContext } from '@keyway/messaging';
import { InjectNats, minimalLogger } from '@keyway/runtime';
import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { NatsConnection } from '@nats-io/transport-node';
import { IDENTITY_CONFIG, IDENTITY_DATABASE_URL, type IdentityConfig } from '../config';
import { OutboxRelay } from '@keyway/outbox';
import { EVENTS_OUTBOX } from '../event-store/event-store';
import { LAST_USED_DURABLE } from '../last-used/last-used.consumer';
import { MEMBER_OUTBOX_CHANNEL, MEMBER_OUTBOX_TABLE } from '../migrations/1796083400000-members-and-sessions';

/**
 * Identity owns the `KEYWAY`, `KEYWAY_USAGE` and `KEYWAY_DLQ` streams: this is the one place they
 * are created and their configuration (subjects, the 10-minute duplicate window, usage's 35 days)
 * set; every other service only waits for them to exist.
 */
@Injectable()
export class RelayService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('OutboxRelay');
  relay: OutboxRelay | undefined;
  /** Member events (`keyway.members.<type>`) from the member outbox, under a lock and checkpoint of their own. */
  memberRelay: OutboxRelay | undefined;

  constructor(
    @InjectNats() private readonly nc: NatsConnection,
    @Inject(IDENTITY_CONFIG) private readonly config: IdentityConfig,
    @Inject(IDENTITY_DATABASE_URL) private readonly databaseUrl: string,
  ) {}

  async onModuleInit(): Promise<void> {
    const ctx = await jetStreamContext(this.nc);
    // Before KEYWAY_USAGE, the last-used projection read `keyway.keys.used` from KEYWAY under the
    // same durable name. KEYWAY no longer holds that subject: the old durable is retired (absent on
    // a new install, so a failure here is nothing to act on).
    await ctx.jsm.consumers.delete(this.config.KEYWAY_STREAM, LAST_USED_DURABLE).catch(() => false);
    await ensureStream(ctx.jsm, { name: this.config.KEYWAY_STREAM, subjects: [...STREAMS.keys.subjects], duplicateWindowMs: 10 * 60_000 });
    await ensureStream(ctx.jsm, {
      name: STREAMS.usage.name,
      subjects: [...STREAMS.usage.subjects],
      duplicateWindowMs: 10 * 60_000,
      maxAgeMs: STREAMS.usage.maxAgeDays * 24 * 3_600_000,
    });
    await ensureStream(ctx.jsm, { name: STREAMS.dlq.name, subjects: [...STREAMS.dlq.subjects] });
    if (!this.config.RELAY_ENABLED) return;
    this.relay = new OutboxRelay({
      databaseUrl: this.databaseUrl,
      source: EVENTS_OUTBOX,
      js: ctx.js,
      pollMs: this.config.RELAY_POLL_MS,
      logger: minimalLogger(this.logger),
    });
    this.relay.start();
    this.memberRelay = new OutboxRelay({
      databaseUrl: this.databaseUrl,
      source: { table: MEMBER_OUTBOX_TABLE, channel: MEMBER_OUTBOX_CHANNEL },
      name: 'members',
      js: ctx.js,
      pollMs: this.config.RELAY_POLL_MS,
      logger: minimalLogger(this.logger),
    });
    this.memberRelay.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([this.relay?.stop(), this.memberRelay?.stop()]);
  }
}
