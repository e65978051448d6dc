import { deadLetterSubject, EVENT_SUBJECTS, EventVersionError, STREAMS, USAGE_SUBJECT, type KeyLifecycleEvent } from '@keyway/contracts';
import { isDataError } from '@keyway/database';
import { DurableConsumer, jetStreamContext, type JetStreamContext } from '@keyway/messaging';
import { minimalLogger, NATS_CONNECTION } from '@keyway/runtime';
import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import type { NatsConnection } from '@nats-io/transport-node';
import type { AuditLogConfig } from '../config';
import { parseKeyLifecycleEvent, parseUsageEvent, type UsageRecord } from './usage-events';
import { UsageRepository } from './usage.repository';

export const USAGE_CONFIG = Symbol('USAGE_CONFIG');
/** Shared by every replica: one durable per stream this module reads. */
export const USAGE_DURABLE = 'audit-log-usage';
export const USAGE_KEYS_DURABLE = 'audit-log-usage-keys';
/** Applied event ids are kept one day longer than KEYWAY_USAGE can redeliver them. */
const APPLIED_IDS_KEPT_DAYS = STREAMS.usage.maxAgeDays + 1;
const PRUNE_EVERY_MS = 3_600_000;
const STREAM_OWNER = 'identity';
type StreamInfo = Awaited<ReturnType<JetStreamContext['jsm']['streams']['info']>>;

/**
 * Feeds the usage tables from two durable consumers, each shared by every replica:
 *  - `KEYWAY_USAGE` (`used` events from every gateway) → per key per minute sums, each scope's last
 *    use; exactly once per event id (see UsageRepository.applyUsage);
 *  - `KEYWAY` (lifecycle events) → the key projection the routes check tenant, mode and scopes in.
 * A message neither can ever process is dead-lettered to `KEYWAY_DLQ` and the consumer goes on.
 */
@Injectable()
export class UsageIngestService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly log = new Logger('usage-ingest');
  private consumers: Array<DurableConsumer<UsageRecord> | DurableConsumer<KeyLifecycleEvent | null>> = [];
  private pruneTimer: NodeJS.Timeout | undefined;
  private starting: Promise<void> = Promise.resolve();
  private stopping = false;

  constructor(
    @Inject(NATS_CONNECTION) private readonly nc: NatsConnection,
    @Inject(USAGE_CONFIG) private readonly config: AuditLogConfig,
    private readonly usage: UsageRepository,
  ) {}

  /**
   * Starts in the background: the audit trail must not wait on (or fail for) the usage streams.
   * Until both exist, readiness says the usage consumers are not running.
   */
  onApplicationBootstrap(): void {
    this.starting = this.startConsumers().catch((err: unknown) => {
      if (!this.stopping) this.log.error(`the usage consumers did not start: ${String(err)}`);
    });
  }

  /** Before NatsModule drains the connection: batches in hand are written and acked first. */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    clearInterval(this.pruneTimer);
    await this.starting;
    await Promise.all(this.consumers.map((c) => c.stop()));
  }

  private async startConsumers(): Promise<void> {
    const ctx = await jetStreamContext(this.nc);
    const usageStream = await this.streamInfo(ctx, STREAMS.usage.name);
    if (!usageStream || !(await this.streamInfo(ctx, this.config.KEYWAY_STREAM))) return;
    // Usage is complete from the oldest event the stream still holds when recording first began
    // (the durable starts from it), or from now on an empty stream. Kept once set.
    await this.usage.startTracking(usageStream.state.messages > 0 ? new Date(usageStream.state.first_ts) : new Date());
    if (this.stopping) return;
    this.consumers.push(
      await this.start(ctx, {
        stream: this.config.KEYWAY_STREAM,
        durable: USAGE_KEYS_DURABLE,
        filterSubject: EVENT_SUBJECTS,
        parse: parseKeyLifecycleEvent,
        handle: (items) => this.usage.applyKeyEvents(items.flatMap((i) => (i.value ? [i.value] : []))),
        // In stream order: a key's scopes follow its events (versions settle redeliveries).
        writers: 1,
      }),
    );
    if (this.stopping) return;
    this.consumers.push(
      await this.start(ctx, {
        stream: STREAMS.usage.name,
        durable: USAGE_DURABLE,
        filterSubject: USAGE_SUBJECT,
        parse: parseUsageEvent,
        handle: (items) => this.usage.applyUsage(items.map((i) => i.value)),
        writers: 2,
      }),
    );
    this.pruneTimer = setInterval(() => void this.prune(), PRUNE_EVERY_MS);
    this.pruneTimer.unref();
  }

  /**
   * Waits, for as long as it takes or until shutdown, for a stream its owner (identity) creates;
   * undefined when shutting down first.
   */
  private async streamInfo(ctx: JetStreamContext, name: string): Promise<StreamInfo | undefined> {
    for (let attempt = 1; !this.stopping; attempt++) {
      try {
        return await ctx.jsm.streams.info(name);
      } catch (err) {
        if (attempt === 1 || attempt % 120 === 0) this.log.warn(`waiting for ${STREAM_OWNER} to create the stream ${name}: ${String(err)}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    return undefined;
  }

  /** For readiness: both pull subscriptions are open. */
  assertConsuming(): void {
    if (this.consumers.length < 2 || !this.consumers.every((c) => c.isConsuming)) throw new Error('the usage consumers are not running');
  }

  /** Forgets applied event ids KEYWAY_USAGE can no longer redeliver. */
  async prune(): Promise<number> {
    try {
      return await this.usage.pruneApplied(APPLIED_IDS_KEPT_DAYS);
    } catch (err) {
      this.log.warn(`pruning applied usage event ids failed; retried in an hour: ${String(err)}`);
      return 0;
    }
  }

  private start<T>(
    ctx: JetStreamContext,
    o: { stream: string; durable: string; filterSubject: string; parse: (raw: unknown) => T; handle: (items: ReadonlyArray<{ value: T }>) => Promise<void>; writers: number },
  ): Promise<DurableConsumer<T>> {
    return DurableConsumer.start<T>({
      ctx,
      ...o,
      deadLetterSubject: deadLetterSubject(o.stream, o.durable),
      // An event from a newer writer, during a rolling deploy: retried until this replica is new too.
      parseRetryable: (err) => err instanceof EventVersionError,
      isPermanent: isDataError,
      logger: minimalLogger(this.log),
      maxBatch: this.config.AUDIT_BATCH_MAX,
      maxDeliver: this.config.AUDIT_MAX_DELIVER,
      nakDelayMs: this.config.AUDIT_NAK_DELAY_MS,
      maxNakDelayMs: this.config.AUDIT_NAK_DELAY_MAX_MS,
      ackWaitMs: this.config.AUDIT_ACK_WAIT_MS,
    });
  }
}
