import { ALL_SCOPES, grants, USAGE_MAX_BUCKETS, type RequestContext, type Scope, type ScopeReport, type UsageInterval, type UsageReport } from '@keyway/contracts';
import { Injectable } from '@nestjs/common';
import { UsageError } from './usage.errors';
import { UsageRepository, type UsageKey } from './usage.repository';

const STEP_MS: Record<UsageInterval, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };
/** Without `from`, this many buckets back from `to`: an hour of minutes, a day of hours, 30 days. */
const DEFAULT_BUCKETS: Record<UsageInterval, number> = { minute: 60, hour: 24, day: 30 };
const DAY_MS = 86_400_000;

export interface UsageQueryCommand {
  ctx: RequestContext;
  keyId: string;
  from: string | undefined;
  to: string | undefined;
  interval: UsageInterval;
}

export interface ScopeReportCommand {
  ctx: RequestContext;
  keyId: string;
  days: number;
}

/**
 * The usage routes. A key is looked up in the tenant and, for a key caller, in its mode (a test key
 * sees test keys only): anything else is `not_found`, the same answer as a key that never existed.
 */
@Injectable()
export class UsageReportHandler {
  constructor(private readonly usage: UsageRepository) {}

  /**
   * Buckets of `interval` from `from` (rounded down to the bucket) until `to` (exclusive), each
   * zero-filled; `to` defaults to now, `from` to the last day of hours (hour of minutes, 30 days).
   */
  async usageOf(c: UsageQueryCommand, now = Date.now()): Promise<UsageReport> {
    const step = STEP_MS[c.interval];
    const to = c.to === undefined ? now : Date.parse(c.to);
    // Without `from`: the last buckets up to `to`, the one `to` falls in included.
    const requestedFrom = c.from === undefined ? to - 1 - mod(to - 1, step) - (DEFAULT_BUCKETS[c.interval] - 1) * step : Date.parse(c.from);
    if (requestedFrom >= to) throw UsageError.invalidField(c.from === undefined ? 'to' : 'from', 'from must be before to');
    const from = requestedFrom - mod(requestedFrom, step);
    const count = Math.ceil((to - from) / step);
    if (count > USAGE_MAX_BUCKETS) {
      throw UsageError.invalidField(
        'from',
        `from…to holds ${count} ${c.interval} buckets; at most ${USAGE_MAX_BUCKETS} per call: narrow from and to, or use a longer interval`,
      );
    }
    await this.keyFor(c.ctx, c.keyId);
    const sums = await this.usage.buckets(c.ctx.tenant_id, c.keyId, new Date(from), new Date(from + count * step), step);
    const data = Array.from({ length: count }, (_, i) => {
      const start = from + i * step;
      const s = sums.get(start);
      return { start: new Date(start).toISOString(), requests: s?.requests ?? 0, rate_limited: s?.rateLimited ?? 0 };
    });
    return { data };
  }

  /**
   * The least-privilege report over the last `days`:
   *  - `used`: each scope an admitted call needed in the period, with its last use, as far as the
   *    key's current grants cover it (so `contacts:read` shows when the key holds `contacts:write`);
   *  - `unused`: granted scopes no call needed in the period (`contacts:write` of a key that only
   *    read contacts: narrow it to `contacts:read`);
   *  - `complete_since`: the data holds every use from then on: the latest of the key's creation,
   *    the start of usage recording, and the last use recorded without its scopes (a v1 event). A
   *    use whose scopes are unknown never makes a scope unused: the report is only complete after it.
   */
  async scopeReport(c: ScopeReportCommand, now = Date.now()): Promise<ScopeReport> {
    const key = await this.keyFor(c.ctx, c.keyId);
    const since = new Date(now - c.days * DAY_MS);
    const { used, unknownUntil, trackingFrom } = await this.usage.scopeUse(c.ctx.tenant_id, c.keyId, since);
    const granted = ALL_SCOPES.filter((s) => key.scopes.includes(s));
    const usedScopes = ALL_SCOPES.filter((s) => used.has(s) && grants(granted, s));
    const bounds = [key.createdAt, trackingFrom, unknownUntil].filter((d): d is Date => d !== undefined).map((d) => d.getTime());
    return {
      granted,
      used: usedScopes.map((scope: Scope) => ({ scope, last_used_at: used.get(scope)!.toISOString() })),
      unused: granted.filter((s) => !used.has(s)),
      complete_since: new Date(Math.max(...bounds)).toISOString(),
    };
  }

  private async keyFor(ctx: RequestContext, keyId: string): Promise<UsageKey> {
    const key = await this.usage.key(ctx.tenant_id, keyId);
    // No environment in the context: the operator or the system, who act on both modes.
    if (!key || (ctx.environment !== undefined && key.environment !== ctx.environment)) throw UsageError.keyNotFound(keyId);
    return key;
  }
}

const mod = (a: number, b: number): number => ((a % b) + b) % b;
