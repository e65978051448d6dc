import { EventVersionError } from '@keyway/contracts';
import { isDataError } from '@keyway/database';
import { awaitStream, DurableConsumer, jetStreamContext, type BatchItem } from '@keyway/messaging';
import { minimalLogger, NATS_CONNECTION } from '@keyway/runtime';
import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import type { NatsConnection } from '@nats-io/transport-node';
import { ChainService } from '../chain/chain.service';
import type { AuditLogConfig } from '../config';
import { parseAuditEvent, type TrailEvent } from './audit-event';
import { AUDIT_CONFIG, AuditEventsRepository } from './audit-events.repository';
/** The one service that creates and configures the key event stream; audit-log only reads it. */
const STREAM_OWNER = 'identity';
/**
 * Everything `KEYWAY` holds: `keyway.keys.<lifecycle>` and `keyway.members.<type>` (one filter:
 * nats-server 2.9 has no filter lists; an existing durable on `keyway.keys.>` is updated to it).
 */
const TRAIL_SUBJECTS = 'keyway.>';

/**
 * Records every key lifecycle and member event from JetStream in `audit_events`. All replicas share one
 * durable consumer, so each event is written by one of them (and, on a redelivery, written again
 * as a no-op: the event id is the primary key). The chain linker (src/chain) then links what is
 * stored, in stream order, up to the consumer's ack floor. `used` events are not part of the
 * trail (the usage module counts them from KEYWAY_USAGE); one still found on this stream (stored
 * before `used` moved) is acked and skipped.
 */
@Injectable()
export class AuditIngestService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly log = new Logger('audit-ingest');
  private consumer: DurableConsumer<TrailEvent> | undefined;
  private linking = false;

  constructor(
    @Inject(NATS_CONNECTION) private readonly nc: NatsConnection,
    @Inject(AUDIT_CONFIG) private readonly config: AuditLogConfig,
    private readonly events: AuditEventsRepository,
    private readonly chain: ChainService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const ctx = await jetStreamContext(this.nc);
    // Identity creates and configures the stream (its duplicate window is what makes the relay's
    // republishes harmless); from here it is only waited for, never changed.
    await awaitStream(ctx.jsm, {
      name: this.config.KEYWAY_STREAM,
      owner: STREAM_OWNER,
      timeoutMs: this.config.AUDIT_STREAM_WAIT_MS,
      logger: minimalLogger(this.log),
    });
    // The linker first, so the first batch is linked as it is stored; it asks for the consumer's
    // ack floor only once rows wait unlinked (and retries while the consumer is being created).
    const { jsm } = ctx;
    this.linking = true;
    await this.chain.startLinker(
      async () => {
        const info = await jsm.consumers.info(this.config.KEYWAY_STREAM, this.config.AUDIT_DURABLE);
        return info.ack_floor.stream_seq;
      },
      (records, query) => this.events.insert(records, query),
    );
    this.consumer = await DurableConsumer.start<TrailEvent>({
      ctx,
      stream: this.config.KEYWAY_STREAM,
      durable: this.config.AUDIT_DURABLE,
      filterSubject: TRAIL_SUBJECTS,
      parse: parseAuditEvent,
      // An event from a newer writer, during a rolling deploy: retried until this replica is new too.
      parseRetryable: (err) => err instanceof EventVersionError,
      handle: (items) => this.record(items),
      isPermanent: isDataError,
      logger: minimalLogger(this.log),
      maxBatch: this.config.AUDIT_BATCH_MAX,
      writers: this.config.AUDIT_WRITERS,
      lingerMs: this.config.AUDIT_BATCH_LINGER_MS,
      maxDeliver: this.config.AUDIT_MAX_DELIVER,
      nakDelayMs: this.config.AUDIT_NAK_DELAY_MS,
      maxNakDelayMs: this.config.AUDIT_NAK_DELAY_MAX_MS,
      ackWaitMs: this.config.AUDIT_ACK_WAIT_MS,
    });
  }

  /** Before NatsModule drains the connection: batches in hand are written and acked first. */
  async beforeApplicationShutdown(): Promise<void> {
    await this.consumer?.stop();
    // After the consumer: the linker stops and the heads it queued are published.
    if (this.linking) await this.chain.stop();
  }

  /** For readiness: the pull subscription is open. */
  assertConsuming(): void {
    if (!this.consumer?.isConsuming) throw new Error('the key event consumer is not running');
  }

  private async record(items: ReadonlyArray<BatchItem<TrailEvent>>): Promise<void> {
    const lifecycle = items.filter(({ value }) => value.type !== 'used');
    const records = lifecycle.map(({ value, msg }) => ({ event: value, streamSeq: msg.seq }));
    // Called in the order the consumer hands batches out: the chain takes them in that order.
    if (this.chain.storing) {
      await this.chain.store(records, items.map(({ msg }) => msg.seq));
      return;
    }
    const sealed = await this.events.insert(records);
    if (lifecycle.length === 0) return;
    const seq = lifecycle.reduce((max, { msg }) => Math.max(max, msg.seq), 0);
    // After this batch is acked (the consumer acks when this returns), so the floor has moved.
    setImmediate(() => this.chain.stored(seq, sealed));
  }
}
