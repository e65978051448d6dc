import { OutboxRelay } from '@keyway/outbox';
import { minimalLogger } from '@keyway/runtime';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { JOURNEYS_CONFIG, JOURNEYS_DATABASE_URL, type JourneysConfig } from '../config';
import { OUTBOX_CHANNEL, OUTBOX_TABLE } from '../migrations/1764806460000-domain-events';
import { DomainStream } from './domain-stream';

/**
 * Moves committed `keyway.journeys.*` events from the outbox to KEYWAY_DOMAIN with the shared,
 * table-agnostic relay: one replica at a time (an advisory lock), in commit order, each event's id
 * its JetStream message id.
 */
@Injectable()
export class JourneyEventsRelay implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('OutboxRelay');
  relay: OutboxRelay | undefined;
  private stopped = false;

  constructor(
    private readonly stream: DomainStream,
    @Inject(JOURNEYS_CONFIG) private readonly config: JourneysConfig,
    @Inject(JOURNEYS_DATABASE_URL) private readonly databaseUrl: string,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.config.RELAY_ENABLED) return;
    this.start().catch((err: unknown) => this.logger.error(`the outbox relay did not start: ${err instanceof Error ? err.message : String(err)}`));
  }

  async onApplicationShutdown(): Promise<void> {
    // Not waiting for start(): it may still be waiting for the stream, and ends by itself.
    this.stopped = true;
    await this.relay?.stop();
  }

  private async start(): Promise<void> {
    const ctx = await this.stream.ready();
    if (!ctx || this.stopped) return;
    // Set before any await: a shutdown from here on finds it and stops it.
    this.relay = new OutboxRelay({
      databaseUrl: this.databaseUrl,
      source: { table: OUTBOX_TABLE, channel: OUTBOX_CHANNEL },
      js: ctx.js,
      pollMs: this.config.RELAY_POLL_MS,
      logger: minimalLogger(this.logger),
      name: 'journeys-domain',
    });
    this.relay.start();
  }
}
