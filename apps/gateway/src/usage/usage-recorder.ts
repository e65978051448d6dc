import { eventSubject, keyEventEnvelope, newId, type VerificationRecord } from '@keyway/contracts';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';

interface Tally {
  tenant_id: string;
  prefix: string;
  count: number;
  first: number;
  last: number;
}

/**
 * Aggregates key use in memory (a map update per request) and publishes one `used` event per key
 * per interval to JetStream, where identity projects `last_used_at` and the audit log keeps it.
 * A failed publish is merged back and retried with the next interval; usage held in memory when
 * the process is killed is lost: it is a counter, not part of a key's history.
 */
export class UsageRecorder {
  private tallies = new Map<string, Tally>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private readonly js: JetStreamClient;

  constructor(
    nc: NatsConnection,
    private readonly gatewayId: string,
    private readonly intervalMs: number,
    private readonly onError: (err: Error) => void,
  ) {
    this.js = jetstream(nc);
  }

  record(rec: VerificationRecord, now = Date.now()): void {
    const t = this.tallies.get(rec.key_id);
    if (t) {
      t.count++;
      t.last = now;
    } else {
      this.tallies.set(rec.key_id, { tenant_id: rec.tenant_id, prefix: rec.prefix, count: 1, first: now, last: now });
    }
  }

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  flush(): Promise<void> {
    this.flushing ??= this.publishAll().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  private async publishAll(): Promise<void> {
    if (this.tallies.size === 0) return;
    const batch = this.tallies;
    this.tallies = new Map();
    await Promise.all(
      [...batch].map(async ([keyId, t]) => {
        const event = keyEventEnvelope<'used'>({
          id: newId('event'),
          type: 'used',
          occurred_at: new Date(t.last).toISOString(),
          tenant_id: t.tenant_id,
          key_id: keyId,
          prefix: t.prefix,
          actor: { type: 'system', id: this.gatewayId },
          data: { count: t.count, rate_limited: 0, first_at: new Date(t.first).toISOString(), last_at: new Date(t.last).toISOString(), scopes_used: null, secret: 'current' },
        });
        try {
          await this.js.publish(eventSubject('used'), JSON.stringify(event), { msgID: event.id, timeout: 2_000 });
        } catch (err) {
          this.merge(keyId, t);
          this.onError(err as Error);
        }
      }),
    );
  }

  private merge(keyId: string, t: Tally): void {
    const cur = this.tallies.get(keyId);
    if (!cur) this.tallies.set(keyId, t);
    else Object.assign(cur, { count: cur.count + t.count, first: Math.min(cur.first, t.first), last: Math.max(cur.last, t.last) });
  }
}
