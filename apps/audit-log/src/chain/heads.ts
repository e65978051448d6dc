import { AuditHead, auditHeadSubject, STREAMS } from '@keyway/contracts';
import type { JetStreamContext, MinimalLogger } from '@keyway/messaging';
import { ensureStream } from '@keyway/messaging';
import { connectionInbox } from '@keyway/runtime';
import { headers, type Msg } from '@nats-io/transport-node';

/** How long a flush waits for the stream's acks before it counts the heads unstored and queues them again. */
const ACK_TIMEOUT_MS = 5_000;

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
    /** Each tenant's latest heads kept (the stream's per-subject limit; older ones are dropped). */
    private readonly kept: number,
  ) {}

  /**
   * Creates or updates the stream: audit-log is its owner. Kept for good (no age), each tenant's
   * latest `kept` heads: verify needs only the latest, and without a bound the stream grew by a
   * message per active tenant per second, forever.
   */
  async ensureStream(): Promise<void> {
    const info = await ensureStream(this.ctx.jsm, { name: this.stream, subjects: [...STREAMS.auditHeads.subjects], maxMsgsPerSubject: this.kept });
    if (info.state.messages > (info.state.num_subjects ?? 0) * this.kept) await this.trimToLimit();
  }

  /**
   * Trims each tenant's subject to the latest `kept` heads. nats-server 2.9 applies a lower
   * per-subject limit at once to a stream that had one (10 to 1), but not to a stream made
   * without any: there it drops one old head per new one, so a tenant keeps its excess for good,
   * and every head it publishes pays the scan a limit above 1 costs. One purge per subject over
   * its limit (a purge with a wildcard filter keeps `kept` messages in all, not per subject).
   */
  private async trimToLimit(): Promise<void> {
    const info = await this.ctx.jsm.streams.info(this.stream, { subjects_filter: '>' });
    for (const [subject, n] of Object.entries(info.state.subjects ?? {})) {
      if (n > this.kept) await this.ctx.jsm.streams.purge(this.stream, { filter: subject, keep: this.kept });
    }
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
    if (batch.length === 0) return;
    const failed = await this.publishAll(batch);
    if (failed.length > 0) this.mark(failed);
  }

  /**
   * Publishes every head of a flush to the stream and waits for the stream's acks; returns the
   * heads not stored. One reply subscription for the whole flush and plain publishes with a reply
   * subject: the same JetStream publish as `js.publish` (message id, an ack per message naming the
   * stream, or an error), without its per-message request, timer and error object (with 1,000
   * active tenants the heads were as many publishes a second as the events themselves).
   */
  private async publishAll(batch: readonly LinkedHead[]): Promise<LinkedHead[]> {
    const { nc } = this.ctx;
    const inbox = connectionInbox(nc); // under the user's own inbox prefix: the only one it may read
    const waiting = new Map(batch.map((h, i) => [String(i), h]));
    const failed: LinkedHead[] = [];
    let settle: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (settle = resolve));
    const answered = (token: string, ok: boolean, why?: string): void => {
      const h = waiting.get(token);
      if (!h) return;
      waiting.delete(token);
      if (!ok) {
        failed.push(h);
        this.logger.warn({ tenant_id: h.tenantId, position: h.position, err: why }, 'could not publish an audit chain head; retrying');
      }
      if (waiting.size === 0) settle();
    };
    const sub = nc.subscribe(`${inbox}.*`, {
      callback: (err: Error | null, m: Msg) => {
        if (err) return;
        const token = m.subject.slice(inbox.length + 1);
        // No stream listens (a 503 status with no data), or the stream refused it ({error}).
        if (m.data.length === 0) return answered(token, false, `status ${m.headers?.code ?? 'empty'}`);
        try {
          const ack = m.json<{ stream?: string; error?: { description?: string } }>();
          answered(token, ack.error === undefined && ack.stream === this.stream, ack.error?.description ?? `stored in ${ack.stream}`);
        } catch (parseErr) {
          answered(token, false, String(parseErr));
        }
      },
    });
    const timer = setTimeout(settle, ACK_TIMEOUT_MS);
    try {
      const linkedAt = new Date().toISOString();
      batch.forEach((h, i) => {
        const head: AuditHead = { tenant_id: h.tenantId, position: h.position, hash: h.hash.toString('hex'), linked_at: linkedAt };
        const hdrs = headers();
        hdrs.set('Nats-Msg-Id', `${h.tenantId}:${h.position}`);
        try {
          nc.publish(auditHeadSubject(h.tenantId), JSON.stringify(head), { reply: `${inbox}.${i}`, headers: hdrs });
        } catch (err) {
          answered(String(i), false, String(err));
        }
      });
      await done;
    } finally {
      clearTimeout(timer);
      sub.unsubscribe();
    }
    for (const h of waiting.values()) {
      failed.push(h);
      this.logger.warn({ tenant_id: h.tenantId, position: h.position }, 'no ack for an audit chain head; retrying');
    }
    return failed;
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
