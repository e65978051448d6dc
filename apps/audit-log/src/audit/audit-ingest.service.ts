import { EventVersionError } from '@keyway/contracts';
import { isDataError, serviceDatabaseUrl } from '@keyway/database';
import { awaitStream, DurableConsumer, jetStreamContext, type BatchItem, type JetStreamContext } from '@keyway/messaging';
import { minimalLogger, NATS_CONNECTION } from '@keyway/runtime';
import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import type { NatsConnection } from '@nats-io/transport-node';
import { ChainService } from '../chain/chain.service';
import { SERVICE, type AuditLogConfig } from '../config';
import { parseAuditEvent, type TrailEvent } from './audit-event';
import { AUDIT_CONFIG, AuditEventsRepository } from './audit-events.repository';
import { WriterLease } from './writer-lease';
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
  /** One writing replica at a time (see WriterLease); undefined: every replica writes. */
  private readonly lease: WriterLease | undefined;
  private leaseLoop: Promise<void> = Promise.resolve();
  private stopping = false;
  private stop: () => void = () => undefined;
  private readonly stopped = new Promise<void>((resolve) => (this.stop = resolve));

  constructor(
    @Inject(NATS_CONNECTION) private readonly nc: NatsConnection,
    @Inject(AUDIT_CONFIG) private readonly config: AuditLogConfig,
    private readonly events: AuditEventsRepository,
    private readonly chain: ChainService,
  ) {
    this.lease =
      config.AUDIT_WRITER_LEASE === 'on' ? new WriterLease(serviceDatabaseUrl(config.DATABASE_URL, SERVICE), config.AUDIT_WRITER_LEASE_POLL_MS, minimalLogger(this.log)) : undefined;
  }

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
    if (this.lease) {
      // Not awaited: a standby replica boots, answers reads and waits for the lease.
      this.leaseLoop = this.holdLease(() => this.startConsumer(ctx));
    } else {
      this.consumer = await this.startConsumer(ctx);
    }
  }

  private async startConsumer(ctx: JetStreamContext): Promise<DurableConsumer<TrailEvent>> {
    // This replica writes from here on: its first batch is planned ahead from the cursor as it is now.
    if (this.linking) await this.chain.primeLinker();
    return DurableConsumer.start<TrailEvent>({
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

  /** Writes the trail while this replica holds the writer lease; stands by otherwise. */
  private async holdLease(start: () => Promise<DurableConsumer<TrailEvent>>): Promise<void> {
    const lease = this.lease!;
    while (!this.stopping) {
      let lost = (): void => undefined;
      const gone = new Promise<void>((resolve) => (lost = resolve));
      if (!(await lease.acquire(() => lost())) || this.stopping) return;
      this.log.log('holds the audit writer lease: writing the trail');
      try {
        this.consumer = await start();
      } catch (err) {
        this.log.error({ err }, 'could not start the key event consumer; giving the writer lease up for a moment');
      }
      if (this.consumer) await Promise.race([gone, this.stopped]);
      if (this.stopping) return;
      this.log.warn('the audit writer lease is gone: stops writing and stands by');
      await this.consumer?.stop();
      this.consumer = undefined;
      await lease.drop();
      await new Promise((r) => setTimeout(r, this.config.AUDIT_WRITER_LEASE_POLL_MS));
    }
  }

  /** Before NatsModule drains the connection: batches in hand are written and acked first. */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    this.stop();
    await this.consumer?.stop();
    await this.lease?.release();
    await this.leaseLoop;
    // After the consumer: the linker stops and the heads it queued are published.
    if (this.linking) await this.chain.stop();
  }

  /** This replica writes the trail (it holds the writer lease, or there is none, and consumes). */
  get writing(): boolean {
    return (this.lease?.isHeld ?? true) && this.consumer?.isConsuming === true;
  }

  /** For readiness: the pull subscription is open. */
  assertConsuming(): void {
    // A standby (another replica holds the writer lease) is ready: it answers reads.
    if (this.lease && !this.lease.isHeld) return;
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
    // The chain off (a bench-only switch): stored, never linked.
    await this.events.insert(records);
  }
}
