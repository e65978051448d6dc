import { STREAMS } from '@keyway/contracts';
import { serviceDatabaseUrl } from '@keyway/database';
import { ensureStream, jetStreamContext } from '@keyway/messaging';
import { OutboxRelay } from '@keyway/outbox';
import { InjectNats, minimalLogger } from '@keyway/runtime';
import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { NatsConnection } from '@nats-io/transport-node';
import { CONTACTS_CONFIG, SERVICE, type ContactsConfig } from '../config';
import { OUTBOX_CHANNEL, OUTBOX_TABLE } from '../migrations/1764806400000-modes-upserts-events';

/**
 * Contacts owns `KEYWAY_DOMAIN` (STREAMS.domain): the one place it is created and configured;
 * journeys only waits for it. The relay moves committed outbox rows there, at least once, with the
 * event id as the message id (a republish within the 10-minute window is de-duplicated). Every
 * replica runs one; the Postgres advisory lock lets one relay at a time.
 */
@Injectable()
export class DomainRelayService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('DomainRelay');
  relay: OutboxRelay | undefined;

  constructor(
    @InjectNats() private readonly nc: NatsConnection,
    @Inject(CONTACTS_CONFIG) private readonly config: ContactsConfig,
  ) {}

  async onModuleInit(): Promise<void> {
    const { jsm, js } = await jetStreamContext(this.nc);
    await ensureStream(jsm, { name: STREAMS.domain.name, subjects: [...STREAMS.domain.subjects], duplicateWindowMs: 10 * 60_000 });
    if (!this.config.RELAY_ENABLED) return;
    this.relay = new OutboxRelay({
      name: 'domain',
      databaseUrl: serviceDatabaseUrl(this.config.DATABASE_URL, SERVICE),
      source: { table: OUTBOX_TABLE, channel: OUTBOX_CHANNEL },
      js,
      pollMs: this.config.RELAY_POLL_MS,
      logger: minimalLogger(this.logger),
    });
    this.relay.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.relay?.stop();
  }
}
