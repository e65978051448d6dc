import { ALL_SCOPES, grants, keyEventEnvelope, newId, USAGE_SUBJECT, type KeyEvent, type Scope, type VerificationRecord } from '@keyway/contracts';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';

type UsedEvent = Extract<KeyEvent, { type: 'used' }>;

/** What became of one authenticated call, for `UsageRecorder.record`. */
export const CallOutcome = {
  /** Refused with `429`: counted in `count` and `rate_limited`, needed no scope. */
  rateLimited: -1,
  /** Refused with `403 insufficient_scope`: counted in `count` only. */
  refused: -2,
} as const;

const SCOPE_BIT = new Map<Scope, number>(ALL_SCOPES.map((s, i) => [s, 1 << i]));

/**
 * The scopes an admitted call "needed", as a bit set (an admitted call is recorded with it):
 *  - every scope of the route's list that the key's grants satisfy. A route that accepts any one
 *    of several (`keys:read` or `audit:read`) records each the key holds, since either alone
 *    would have done: the scope report must never call a scope unused that a call relied on.
 *  - named as the route requires it: a key holding `contacts:write` that reads contacts needed
 *    `contacts:read`, so its report shows `contacts:read` used and `contacts:write` unused, which
 *    is exactly the narrowing to suggest.
 *  - none for a route that requires none (`/v1/whoami`): 0, still an admitted call.
 * 0 for a scoped route also means the key lacks every scope listed: the caller refuses it.
 */
export function neededScopes(granted: readonly string[], required: readonly Scope[]): number {
  let mask = 0;
  for (const s of required) if (grants(granted, s)) mask |= SCOPE_BIT.get(s)!;
  return mask;
}

function scopesOf(mask: number): Scope[] {
  return ALL_SCOPES.filter((s) => (mask & SCOPE_BIT.get(s)!) !== 0);
}

interface Tally {
  rec: VerificationRecord;
  count: number;
  rateLimited: number;
  scopes: number;
  first: number;
  last: number;
  /** The end of the UTC minute of `first`: a tally never spans two minutes. */
  minuteEnd: number;
}

/** Events kept for a republish at most; beyond it the oldest are given up (and reported). */
const MAX_RETRY = 100_000;

/**
 * Aggregates key use in memory (a map update per request) and publishes `used` v2 events to
 * JetStream (`KEYWAY_USAGE`): one per secret of a key (its prefix: current, or previous inside a
 * rotation grace) per flush interval, and never across a UTC minute, so the audit log's per-minute
 * buckets get each event whole. `count` is every authenticated call, the rate-limited and
 * scope-refused ones included; `rate_limited` counts the 429s; `scopes_used` the scopes the
 * admitted calls needed (`neededScopes`).
 *
 * A publish that failed is retried with the next interval as the same event (same id), so a
 * publish that did land but whose ack was lost is dropped as a duplicate by JetStream and by the
 * audit log, not counted twice. Usage held in memory when the process is killed is lost: it is a
 * counter, not part of a key's history.
 */
export class UsageRecorder {
  private tallies = new Map<string, Tally>();
  /** Tallies closed before the flush: their minute ended, or their secret became the previous one. */
  private sealed: Tally[] = [];
  private retry: UsedEvent[] = [];
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

  /**
   * One authenticated call: `outcome` is the scope bit set the admitted call needed
   * (`neededScopes`, 0 for none) or a `CallOutcome` for a refused one.
   */
  record(rec: VerificationRecord, outcome: number, now = Date.now()): void {
    let t = this.tallies.get(rec.prefix);
    // A new minute, or the secret's standing changed (a rotation made it the previous one): a new tally.
    if (t !== undefined && (now >= t.minuteEnd || t.rec.valid_until !== rec.valid_until)) {
      this.sealed.push(t);
      t = undefined;
    }
    if (t === undefined) {
      t = { rec, count: 0, rateLimited: 0, scopes: 0, first: now, last: now, minuteEnd: now - (now % 60_000) + 60_000 };
      this.tallies.set(rec.prefix, t);
    }
    t.count++;
    if (outcome > 0) t.scopes |= outcome;
    else if (outcome === CallOutcome.rateLimited) t.rateLimited++;
    if (now > t.last) t.last = now;
    if (now < t.first) t.first = now;
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
    const events = [...this.retry, ...this.sealed.map((t) => this.toEvent(t)), ...[...this.tallies.values()].map((t) => this.toEvent(t))];
    this.retry = [];
    this.sealed = [];
    this.tallies = new Map();
    if (events.length === 0) return;
    const failed: UsedEvent[] = [];
    let lastError: Error | undefined;
    await Promise.all(
      events.map(async (event) => {
        try {
          await this.js.publish(USAGE_SUBJECT, JSON.stringify(event), { msgID: event.id, timeout: 2_000 });
        } catch (err) {
          failed.push(event);
          lastError = err as Error;
        }
      }),
    );
    if (lastError === undefined) return;
    const dropped = Math.max(0, failed.length - MAX_RETRY);
    this.retry = failed.slice(dropped);
    this.onError(dropped > 0 ? new Error(`${lastError.message} (${dropped} usage events given up)`) : lastError);
  }

  private toEvent(t: Tally): UsedEvent {
    return keyEventEnvelope<'used'>({
      id: newId('event'),
      type: 'used',
      occurred_at: new Date(t.last).toISOString(),
      tenant_id: t.rec.tenant_id,
      key_id: t.rec.key_id,
      prefix: t.rec.prefix,
      actor: { type: 'system', id: this.gatewayId },
      data: {
        count: t.count,
        rate_limited: t.rateLimited,
        first_at: new Date(t.first).toISOString(),
        last_at: new Date(t.last).toISOString(),
        scopes_used: scopesOf(t.scopes),
        // A record with an end is a rotated-away secret inside its grace (the one that matched).
        secret: t.rec.valid_until === null ? 'current' : 'previous',
      },
    });
  }
}
