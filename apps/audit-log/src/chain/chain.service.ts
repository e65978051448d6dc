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
import { ChainLinker, type SealedRow } from './linker';
import { verifyChain, type VerifyResult } from './verifier';

/** The chain's parts in the service: its key, the head publisher, the linker and verify. */
@Injectable()
export class ChainService implements OnModuleInit {
  private readonly log = new Logger('audit-chain');
  private readonly key: ChainKey;
  private heads: HeadPublisher | undefined;
  private linker: ChainLinker | undefined;

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
    this.heads = new HeadPublisher(await jetStreamContext(this.nc), this.config.AUDIT_HEADS_STREAM, this.config.AUDIT_HEAD_PUBLISH_MS, minimalLogger(this.log));
    await this.heads.ensureStream();
  }

  /** Starts linking (after the consumer exists: `floor` reads its ack floor). */
  async startLinker(floor: () => Promise<number>): Promise<void> {
    if (!this.enabled || !this.heads) return;
    const heads = this.config.AUDIT_HEADS_PUBLISH === 'on' ? this.heads : { mark: () => undefined };
    this.linker = new ChainLinker({ ds: this.ds, key: this.key, heads, floor, idleMs: this.config.AUDIT_LINK_IDLE_MS, paceMs: this.config.AUDIT_LINK_PACE_MS, logger: minimalLogger(this.log) });
    const sealed = await this.linker.sealLegacyRows();
    if (sealed > 0) this.log.warn({ rows: sealed }, 'sealed audit rows stored before the chain existed');
    this.linker.start();
  }

  /** A batch was stored, up to stream sequence `seq`, with the rows it sealed. */
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
