import { deadLetterSubject, domainEventSubject, EventVersionError, parseDomainEvent } from '@keyway/contracts';
import { isDataError } from '@keyway/database';
import { DurableConsumer, type BatchItem } from '@keyway/messaging';
import { minimalLogger } from '@keyway/runtime';
import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { JOURNEYS_CONFIG, type JourneysConfig } from '../config';
import { DomainStream } from '../events/domain-stream';
import { applyContactDeletions, type ContactDeletion } from './contact-links';

const CONTACTS_DELETED = domainEventSubject('contacts.deleted');

function parseDeletion(raw: unknown): ContactDeletion {
  const e = parseDomainEvent(raw);
  if (e.type !== 'contacts.deleted') throw new Error(`${CONTACTS_DELETED} carried a ${e.type} event`);
  return { eventId: e.id, tenantId: e.tenant_id, contactId: e.resource_id, mode: e.environment, deletedAt: new Date(e.occurred_at) };
}

/**
 * `keyway.contacts.deleted` → the contact's journeys keep their history and lose the link. A
 * durable consumer shared by every replica, in order (one writer); each batch is one transaction,
 * acked after it committed, so a crash redelivers it and the redelivery changes nothing.
 */
@Injectable()
export class ContactDeletionsConsumer implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('contact-deletions');
  private consumer: DurableConsumer<ContactDeletion> | undefined;
  private stopped = false;

  constructor(
    @InjectDataSource() private readonly ds: DataSource,
    private readonly stream: DomainStream,
    @Inject(JOURNEYS_CONFIG) private readonly config: JourneysConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.start().catch((err: unknown) => this.logger.error(`the contacts.deleted consumer did not start: ${err instanceof Error ? err.message : String(err)}`));
  }

  /** Before the NATS connection drains: a batch in hand is written and acked first. */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    await this.consumer?.stop();
  }

  /** For tests and readiness: the pull subscription is open. */
  get isConsuming(): boolean {
    return this.consumer?.isConsuming === true;
  }

  private async start(): Promise<void> {
    const ctx = await this.stream.ready();
    if (!ctx || this.stopped) return;
    this.consumer = await DurableConsumer.start<ContactDeletion>({
      ctx,
      stream: this.stream.name,
      durable: this.config.CONTACTS_DELETED_DURABLE,
      filterSubject: CONTACTS_DELETED,
      parse: parseDeletion,
      // An event of a schema version newer than this reader, during a rolling deploy: retried, never dropped.
      parseRetryable: (err) => err instanceof EventVersionError,
      handle: (items) => this.apply(items),
      isPermanent: isDataError,
      // A deletion no retry can apply goes to KEYWAY_DLQ with the reason, and the ones behind it carry on.
      deadLetterSubject: deadLetterSubject(this.stream.name, this.config.CONTACTS_DELETED_DURABLE),
      logger: minimalLogger(this.logger),
      maxDeliver: this.config.CONTACTS_DELETED_MAX_DELIVER,
      nakDelayMs: this.config.CONTACTS_DELETED_NAK_DELAY_MS,
    });
    if (this.stopped) await this.consumer.stop();
  }

  private async apply(items: ReadonlyArray<BatchItem<ContactDeletion>>): Promise<void> {
    const unlinked = await this.ds.transaction((m) => applyContactDeletions(m, items.map((i) => i.value)));
    if (unlinked > 0) this.logger.log({ msg: 'journeys unlinked from deleted contacts', contacts: items.length, journeys: unlinked });
  }
}
