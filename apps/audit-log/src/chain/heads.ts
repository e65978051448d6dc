import { AuditHead, auditHeadSubject, STREAMS } from '@keyway/contracts';
import type { JetStreamContext, MinimalLogger } from '@keyway/messaging';
import { ensureStream } from '@keyway/messaging';

export interface LinkedHead {
  tenantId: string;
  position: number;
  hash: Buffer;
}

const isNotFound = (err: unknown): boolean => /not found|no message found/i.test(String((err as Error | undefined)?.message ?? err));

/**
 * Each tenant's chain head, published to KEYWAY_AUDIT_HEADS (kept for good; audit-log owns it), so
 * that a deleted tail is caught: the table can be cut back, the published head cannot.
 *
 * Heads are coalesced: a tenant whose chain grew is published at most once per `intervalMs`
 * (its latest head), so a busy tenant costs one message a second, not one per event. A head is
 * published after the links it names are committed; a crash in between leaves the published head
 * behind the table, which verify accepts (the head's entry must still match). Message id
 * `<tenant>:<position>`: a head published twice is stored once.
 */
export class HeadPublisher {
  private readonly pending = new Map<string, LinkedHead>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly ctx: JetStreamContext,
    private readonly stream: string,
    private readonly intervalMs: number,
    private readonly logger: MinimalLogger,
  ) {}

  /** Creates or updates the stream: audit-log is its owner. */
  async ensureStream(): Promise<void> {
    await ensureStream(this.ctx.jsm, { name: this.stream, subjects: [...STREAMS.auditHeads.subjects] });
  }

  /** Queues heads for the next flush; a later head of a tenant replaces an earlier one. */
  mark(heads: readonly LinkedHead[]): void {
    for (const h of heads) {
      const seen = this.pending.get(h.tenantId);
      if (!seen || seen.position < h.position) this.pending.set(h.tenantId, h);
    }
    if (this.pending.size > 0 && !this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flushing = this.flushing.then(() => this.flush());
      }, this.intervalMs);
    }
  }

  /** Publishes what is queued now (also on shutdown). */
  async flushNow(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.flushing = this.flushing.then(() => this.flush());
    await this.flushing;
  }

  private async flush(): Promise<void> {
    const batch = [...this.pending.values()];
    this.pending.clear();
    const failed: LinkedHead[] = [];
    await Promise.all(
      batch.map(async (h) => {
        const head: AuditHead = { tenant_id: h.tenantId, position: h.position, hash: h.hash.toString('hex'), linked_at: new Date().toISOString() };
        try {
          await this.ctx.js.publish(auditHeadSubject(h.tenantId), JSON.stringify(head), { msgID: `${h.tenantId}:${h.position}`, timeout: 5_000 });
        } catch (err) {
          failed.push(h);
          this.logger.warn({ err, tenant_id: h.tenantId, position: h.position }, 'could not publish an audit chain head; retrying');
        }
      }),
    );
    if (failed.length > 0) this.mark(failed);
  }

  /** The tenant's latest published head, or null if none was ever published. */
  async latest(tenantId: string): Promise<AuditHead | null> {
    try {
      const m = await this.ctx.jsm.streams.getMessage(this.stream, { last_by_subj: auditHeadSubject(tenantId) });
      return m ? AuditHead.parse(m.json()) : null;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }
}
