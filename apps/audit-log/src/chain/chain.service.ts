import { jetStreamContext } from '@keyway/messaging';
import { minimalLogger, NATS_CONNECTION } from '@keyway/runtime';
import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { NatsConnection } from '@nats-io/transport-node';
import { DataSource } from 'typeorm';
import { AUDIT_CONFIG } from '../audit/audit-events.repository';
import { chainKeyOf, type AuditLogConfig } from '../config';
import { ChainKey } from './chain';
import { HeadPublisher } from './heads';
import type { AuditRecord } from '../audit/audit-event';
import { InsertLinker, type StoreUnlinked, type StoredBatch } from './insert-linker';
import { ChainLinker, type SealedRow } from './linker';
import { verifyChain, type VerifyResult } from './verifier';

/** The chain's parts in the service: its key, the head publisher, the linker and verify. */
@Injectable()
export class ChainService implements OnModuleInit {
  private readonly log = new Logger('audit-chain');
  private readonly key: ChainKey;
  private heads: HeadPublisher | undefined;
  private linker: ChainLinker | undefined;
  private inserter: InsertLinker | undefined;

  constructor(
    @Inject(NATS_CONNECTION) private readonly nc: NatsConnection,
    @Inject(AUDIT_CONFIG) private readonly config: AuditLogConfig,
    @InjectDataSource() private readonly ds: DataSource,
  ) {
    this.key = new ChainKey(chainKeyOf(config));
  }

  get enabled(): boolean {
    return this.config.AUDIT_CHAIN === 'on';
  }

  async onModuleInit(): Promise<void> {
    if (this.config.AUDIT_CHAIN_KEY === undefined) {
      this.log.warn('AUDIT_CHAIN_KEY is not set: the audit chain uses the public development key and proves nothing (set it in production)');
    }
    this.heads = new HeadPublisher(await jetStreamContext(this.nc), this.config.AUDIT_HEADS_STREAM, this.config.AUDIT_HEAD_PUBLISH_MS, minimalLogger(this.log), this.config.AUDIT_HEADS_KEPT);
    await this.heads.ensureStream();
  }

  /** Starts linking (after the consumer exists: `floor` reads its ack floor). */
  /**
   * Starts linking (after the consumer exists: `floor` reads its ack floor). `storeUnlinked` is the
   * plain batch insert, for what cannot be linked as it is stored.
   */
  async startLinker(floor: () => Promise<number>, storeUnlinked: StoreUnlinked): Promise<void> {
    if (!this.enabled || !this.heads) return;
    const heads = this.config.AUDIT_HEADS_PUBLISH === 'on' ? this.heads : { mark: () => undefined };
    const linker = new ChainLinker({ ds: this.ds, key: this.key, heads, floor, idleMs: this.config.AUDIT_LINK_IDLE_MS, paceMs: this.config.AUDIT_LINK_PACE_MS, logger: minimalLogger(this.log) });
    this.linker = linker;
    const sealed = await linker.sealLegacyRows();
    if (sealed > 0) this.log.warn({ rows: sealed }, 'sealed audit rows stored before the chain existed');
    this.inserter = new InsertLinker({
      ds: this.ds,
      key: this.key,
      heads,
      storeUnlinked,
      linkedUpTo: (seq) => linker.linkedUpTo(seq),
      storedUnlinked: (seq, rows) => linker.wake(seq, rows),
    });
    linker.start();
  }

  /** Before this replica's first batch (see InsertLinker.prime). */
  async primeLinker(): Promise<void> {
    await this.inserter?.prime(this.config.AUDIT_WRITERS);
  }

  /** True once batches go through store() (the chain is on and the linker started). */
  get storing(): boolean {
    return this.inserter !== undefined;
  }

  /**
   * Stores a batch (its trail records, and the stream sequence of every message in it), linked as
   * it is stored when it continues the chain, else sealed for the linker.
   */
  store(records: readonly AuditRecord[], settled: readonly number[]): Promise<StoredBatch> {
    if (!this.inserter) throw new Error('the chain is not started');
    return this.inserter.store(records, settled);
  }

  /** A batch was stored sealed outside store() (up to stream sequence `seq`): the linker links it soon. */
  stored(seq: number, rows: readonly SealedRow[] = []): void {
    this.linker?.wake(seq, rows);
  }

  /** Stops linking and publishes the heads still queued. */
  async stop(): Promise<void> {
    await this.linker?.stop();
    await this.heads?.flushNow();
  }

  /** `environment` `test`: answered with the test mode's entries only (the walk covers the whole chain). */
  async verify(tenantId: string, environment?: 'live' | 'test'): Promise<VerifyResult> {
    const heads = this.heads;
    if (!heads) throw new Error('the chain is not started');
    return verifyChain({ ds: this.ds, key: this.key, publishedHead: (t) => heads.latest(t) }, tenantId, environment);
  }
}
