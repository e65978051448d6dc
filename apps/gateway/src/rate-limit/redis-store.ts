import type { RateLimit } from '@keyway/contracts';
import { Redis, type RedisOptions } from 'ioredis';
import { msUntilReset, WINDOW_MS, WINDOWS, type PerWindow, type WindowState } from './windows';

/**
 * Checks and increments the four windows of one key in one round trip, for a whole batch of calls
 * on that key at once, and may lease this replica a few more calls (see `RedisWindowStore`).
 *
 * Why a script and not rate-limiter-flexible's RateLimiterRedis: each of its limiters has one
 * fixed `points` and one window, so four windows are four commands (RateLimiterUnion), and a call
 * refused by one window has already been counted by the others. Here a refused call changes
 * nothing, every key carries its own limits (ARGV), and the windows are aligned to Redis's clock,
 * so every gateway replica agrees on when a window starts whatever its own clock says.
 *
 * A batch is the calls on one key that reached this replica while its previous pipeline was out
 * (see `RedisWindowStore.flush`): the script admits as many of them as every window has room for
 * and counts exactly those, which is what the same calls one after another would have done.
 *
 * KEYS[1..4]: the counters, shortest window first. ARGV[1]: points each call takes (0 = only
 * read). ARGV[2..5]: the limits. ARGV[6..9]: the window sizes in ms. ARGV[10]: calls in the batch.
 * ARGV[11]: calls the replica would like leased beyond them. ARGV[12]: points given back from an
 * ended lease, ARGV[13]: when (Redis ms) that lease was taken; given back only to the windows
 * that are still the ones it was taken in. ARGV[14]: lease only if every window keeps at least
 * this many calls after the batch; ARGV[15]: and at most 1/this of them.
 * Returns {admitted, now in ms (Redis TIME), count1..count4 after the call, calls leased}.
 * Redis 7 replicates a script's effects, so writing after TIME is allowed.
 */
export const CONSUME_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cost = tonumber(ARGV[1])
local n = tonumber(ARGV[10])
local extra = tonumber(ARGV[11])
local back = tonumber(ARGV[12])
local backAt = tonumber(ARGV[13])
if back > 0 then
  for i = 1, 4 do
    local size = tonumber(ARGV[5 + i])
    if math.floor(backAt / size) == math.floor(now / size) then
      local c = tonumber(redis.call('GET', KEYS[i]) or '0')
      if c > 0 then redis.call('DECRBY', KEYS[i], math.min(back, c)) end
    end
  end
end
local counts = {}
local room = math.huge
for i = 1, 4 do
  counts[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
  if cost > 0 then
    local r = math.floor((tonumber(ARGV[1 + i]) - counts[i]) / cost)
    if r < room then room = r end
  end
end
local admit = n
local lease = 0
if cost > 0 then
  if room < 0 then room = 0 end
  if room < admit then admit = room end
  if admit == n and extra > 0 and room - n >= tonumber(ARGV[14]) then
    lease = math.min(extra, math.floor((room - n) / tonumber(ARGV[15])))
  end
  local take = cost * (admit + lease)
  if take > 0 then
    for i = 1, 4 do
      counts[i] = redis.call('INCRBY', KEYS[i], take)
      if counts[i] == take then
        local size = tonumber(ARGV[5 + i])
        redis.call('PEXPIRE', KEYS[i], size - (now % size))
      end
    end
  end
end
return {admit, now, counts[1], counts[2], counts[3], counts[4], lease}
`;

/**
 * When a replica may count calls locally: only for a key that every window leaves at least
 * `minSpare` calls after the batch (a limit that is about to bite is counted in Redis call by
 * call), only after a first call this second (a key seen once a second never leases), at most
 * 1/`shareOfSpare` of what is left, at most `max` calls, and only until Redis's second ends
 * (minus `marginMs` for the clocks), because the burst window is a second.
 */
export const LEASE = { minSpare: 1_000, shareOfSpare: 8, max: 1_000, marginMs: 5 } as const;

interface ScriptCommands {
  keywayRateLimit(...keysAndArgs: string[]): Promise<number[]>;
}
type ScriptClient = Redis & ScriptCommands;
type ScriptReplyCallback = (err: Error | null | undefined, reply?: number[]) => void;
interface ScriptPipeline {
  keywayRateLimit(...keysAndArgsAndCallback: [...string[], ScriptReplyCallback]): unknown;
  exec(): Promise<unknown>;
}
/** Calls on one key with the same limits and cost, answered by one script run. */
interface Batch {
  keyId: string;
  limits: RateLimit;
  cost: number;
  calls: Array<{ resolve: (state: WindowState) => void; reject: (err: Error) => void }>;
  /** Points of an ended lease given back with this run, and when that lease was taken (Redis ms). */
  back: number;
  backAt: number;
}

/** Calls this replica may admit on a key without asking Redis: already counted there. */
interface Lease {
  limits: RateLimit;
  cost: number;
  /** Calls left. A spent lease stays until it ends: it says the key is busy this second. */
  tokens: number;
  size: number;
  /**
   * Redis's clock when it was taken, and Redis's clock minus ours as of sending. "Ours" is the
   * monotonic clock (performance.now): a wall-clock step on this host cannot stretch a lease.
   */
  takenAt: number;
  offset: number;
  /** Our (monotonic) clock after which it may no longer be used. */
  validUntil: number;
  /** The counts in Redis just after it was taken, which include every leased call. */
  after: PerWindow<number>;
}

const sameLimits = (a: RateLimit, b: RateLimit): boolean =>
  a === b || WINDOWS.every((w) => a[w] === b[w]);

/** Whether `lease` may admit calls of these limits and cost at `now` (it may be spent). */
const serves = (lease: Lease, limits: RateLimit, cost: number, now: number): boolean =>
  now < lease.validUntil && lease.cost === cost && sameLimits(lease.limits, limits);

/**
 * Fails fast: no offline queue (a command while disconnected rejects at once), no per-command
 * retries, a small command timeout. ioredis keeps reconnecting in the background.
 */
export function fastFailRedisOptions(commandTimeoutMs: number): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    connectTimeout: 1_000,
    // A socket that never connected never closes either: don't keep the process up 2 s for it.
    disconnectTimeout: 100,
    retryStrategy: (attempt: number) => Math.min(attempt * 100, 2_000),
    lazyConnect: false,
    // The store batches its own calls (see `flush`); ioredis' per-command pipelining would only add work.
    enableAutoPipelining: false,
  };
}

/**
 * The Redis side of the limiter. Every call is counted in Redis before it is admitted, so the
 * replicas together never admit more than a limit. Two things keep Redis off most requests' path:
 *
 * - Batching: calls are queued and sent as one pipeline, with one script run per key, and one
 *   pipeline is in flight at a time: the calls made while it travels go together in the next
 *   (group commit). The busier the gateway, the bigger the batches.
 * - Leases, for busy keys with room to spare (`LEASE`): the script may count a few calls more
 *   than the batch needs and let this replica admit them itself until the end of Redis's current
 *   second. A lease is taken from the room left, so it can never let the replicas exceed a limit;
 *   what a lease did not use is given back to the windows it was taken in when it ends. The price:
 *   for up to a second a replica can hold calls another replica would have admitted, at most
 *   1/8 of a room of 1,000 or more, so near a limit (fewer than 1,000 calls left in some window)
 *   every call is counted in Redis as it comes and limits are exact where they bite.
 */
export class RedisWindowStore {
  readonly client: ScriptClient;
  /** Calls made since the last flush, by key; sent together as one pipeline (see `flush`). */
  private pending = new Map<string, Batch[]>();
  /** A flush is scheduled, or a pipeline is on its way to Redis and back. */
  private busy = false;
  private idleWaiters: Array<() => void> = [];
  private readonly leases = new Map<string, Lease>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    redisUrl: string,
    private readonly keyPrefix: string,
    commandTimeoutMs: number,
  ) {
    this.client = new Redis(redisUrl, fastFailRedisOptions(commandTimeoutMs)) as ScriptClient;
    this.client.defineCommand('keywayRateLimit', { numberOfKeys: WINDOWS.length, lua: CONSUME_SCRIPT });
    // Ended leases of keys that went quiet give back what they did not use.
    this.sweeper = setInterval(() => this.sweep(performance.now()), 500);
    this.sweeper.unref();
  }

  get ready(): boolean {
    return this.client.status === 'ready';
  }

  /**
   * Loads the script before the first request needs it: otherwise the first concurrent calls
   * each pay EVALSHA → NOSCRIPT → EVAL with the whole script, and can miss the command timeout.
   */
  async loadScript(): Promise<void> {
    await this.client.script('LOAD', CONSUME_SCRIPT);
  }

  /**
   * The `{keyId}` hash tag keeps a key's four counters in one Redis Cluster slot, which a script
   * touching all of them needs.
   */
  keyOf(keyId: string, window: string): string {
    return `${this.keyPrefix}{${keyId}}:${window}`;
  }

  /** Counts one call (`cost` points; 0 only reads) on `keyId`: from its lease, or with its batch. */
  apply(keyId: string, limits: RateLimit, cost: number): Promise<WindowState> {
    if (cost > 0) {
      const lease = this.leases.get(keyId);
      if (lease !== undefined) {
        const now = performance.now();
        if (!serves(lease, limits, cost, now)) this.endLease(keyId, lease);
        else if (lease.tokens > 0) return Promise.resolve(this.fromLease(lease, now));
      }
    }
    return new Promise<WindowState>((resolve, reject) => {
      this.enqueue(keyId, limits, cost).calls.push({ resolve, reject });
    });
  }

  private enqueue(keyId: string, limits: RateLimit, cost: number, back = 0, backAt = 0): Batch {
    if (!this.busy) {
      this.busy = true;
      setImmediate(this.flush);
    }
    let batches = this.pending.get(keyId);
    if (batches === undefined) {
      batches = [];
      this.pending.set(keyId, batches);
    }
    let batch = back > 0 ? undefined : batches.find((b) => b.back === 0 && b.cost === cost && sameLimits(b.limits, limits));
    if (batch === undefined) {
      batch = { keyId, limits, cost, calls: [], back, backAt };
      batches.push(batch);
    }
    return batch;
  }

  /** One call admitted from a lease; it sees the counts as if the lease were used up to it. */
  private fromLease(lease: Lease, now: number): WindowState {
    lease.tokens--;
    const counts = {} as PerWindow<number>;
    const resetMs = {} as PerWindow<number>;
    const redisNow = now + lease.offset;
    for (const w of WINDOWS) {
      counts[w] = lease.after[w] - lease.tokens * lease.cost;
      resetMs[w] = msUntilReset(redisNow, w);
    }
    return { allowed: true, counts, resetMs };
  }

  /** Forgets a lease; what it did not use goes back to Redis with the next pipeline. */
  private endLease(keyId: string, lease: Lease): void {
    if (this.leases.get(keyId) === lease) this.leases.delete(keyId);
    if (lease.tokens > 0) this.enqueue(keyId, lease.limits, lease.cost, lease.tokens * lease.cost, lease.takenAt);
    lease.tokens = 0;
  }

  private sweep(now: number): void {
    for (const [keyId, lease] of this.leases) if (now >= lease.validUntil) this.endLease(keyId, lease);
  }

  /**
   * Sends every batch queued since the last flush in one pipeline: one write to Redis (and one
   * reply read) for all of them, and one script run per key among them. One pipeline is in flight
   * at a time (see the class); an idle gateway still sends at the end of the I/O phase
   * (setImmediate), not later. Calls that queued while a lease for their key was being taken are
   * admitted from it first. Each batch keeps its own command timeout; when a pipeline fails, the
   * calls queued behind it fail at once with the same error (the limiter answers them from
   * memory) rather than wait out a second timeout.
   */
  private readonly flush = (): void => {
    const now = performance.now();
    const batches: Batch[] = [];
    for (const list of this.pending.values()) {
      for (const b of list) if (this.admitFromLease(b, now)) batches.push(b);
    }
    this.pending = new Map();
    if (batches.length === 0) {
      this.busy = false;
      for (const wake of this.idleWaiters.splice(0)) wake();
      return;
    }
    let left = batches.length;
    let failure: Error | undefined;
    const settled = (): void => {
      if (--left > 0) return;
      if (failure !== undefined) this.failQueued(failure);
      this.flush();
    };
    const reply = (b: Batch) => (err: Error | null | undefined, result?: number[]): void => {
      if (err) {
        failure = err;
        this.fail(b, err);
      } else this.answer(b, result ?? [], now);
      settled();
    };
    if (batches.length === 1) {
      const only = batches[0]!;
      const done = reply(only);
      this.client.keywayRateLimit(...this.argsOf(only)).then(
        (r) => done(null, r),
        (err: Error) => done(err),
      );
      return;
    }
    const pipeline = this.client.pipeline() as unknown as ScriptPipeline;
    for (const b of batches) pipeline.keywayRateLimit(...this.argsOf(b), reply(b));
    // Failures reach each batch through its callback.
    pipeline.exec().catch(() => undefined);
  };

  /** Admits what it can of `b` from its key's lease; says whether Redis is still needed. */
  private admitFromLease(b: Batch, now: number): boolean {
    const lease = b.cost > 0 && b.back === 0 ? this.leases.get(b.keyId) : undefined;
    if (lease !== undefined && lease.tokens > 0 && serves(lease, b.limits, b.cost, now)) {
      const served = b.calls.splice(0, Math.min(lease.tokens, b.calls.length));
      for (const call of served) call.resolve(this.fromLease(lease, now));
    }
    return b.calls.length > 0 || b.back > 0;
  }

  private failQueued(err: Error): void {
    const queued = this.pending;
    this.pending = new Map();
    for (const list of queued.values()) for (const b of list) this.fail(b, err);
  }

  private argsOf(b: Batch): string[] {
    const n = b.calls.length;
    // Lease only for a key already busy this second (it has a lease, maybe spent); grow with use.
    const prev = n > 0 ? this.leases.get(b.keyId) : undefined;
    const extra = prev === undefined ? 0 : Math.min(LEASE.max, Math.max(8 * n, prev.tokens === 0 ? 2 * prev.size : 0));
    const args: string[] = [];
    for (const w of WINDOWS) args.push(this.keyOf(b.keyId, w));
    args.push(String(b.cost));
    for (const w of WINDOWS) args.push(String(b.limits[w]));
    for (const w of WINDOWS) args.push(String(WINDOW_MS[w]));
    args.push(String(n), String(extra), String(b.back), String(b.backAt), String(LEASE.minSpare), String(LEASE.shareOfSpare));
    return args;
  }

  /**
   * The first `admitted` calls of the batch pass, in the order they were made, each seeing the
   * counts as they were just after it (so their RateLimit-Remaining go down one by one); the
   * others are refused and see the counts the admitted ones left. When every call passed, the
   * key is marked busy for the rest of the second with the lease the script granted (maybe none).
   */
  private answer(b: Batch, reply: number[], sentAt: number): void {
    if (b.calls.length === 0) return;
    const admitted = Number(reply[0] ?? 0);
    const now = Number(reply[1]);
    const leased = Number(reply[6] ?? 0);
    const after = {} as PerWindow<number>;
    const resetMs = {} as PerWindow<number>;
    WINDOWS.forEach((w, i) => {
      after[w] = Number(reply[2 + i] ?? 0);
      resetMs[w] = msUntilReset(now, w);
    });
    if (b.cost > 0 && admitted === b.calls.length) {
      const old = this.leases.get(b.keyId);
      if (old !== undefined) this.endLease(b.keyId, old);
      // Our clock runs behind Redis's by at most `now - sentAt` (TIME was read after we sent).
      this.leases.set(b.keyId, {
        limits: b.limits,
        cost: b.cost,
        tokens: leased,
        size: leased,
        takenAt: now,
        offset: now - sentAt,
        validUntil: sentAt + msUntilReset(now, 'burst_per_second') - LEASE.marginMs,
        after,
      });
    }
    b.calls.forEach((call, j) => {
      if (b.cost === 0) return call.resolve({ allowed: true, counts: after, resetMs });
      if (j >= admitted) return call.resolve({ allowed: false, counts: after, resetMs });
      const later = (leased + admitted - 1 - j) * b.cost;
      const counts = {} as PerWindow<number>;
      for (const w of WINDOWS) counts[w] = after[w] - later;
      call.resolve({ allowed: true, counts, resetMs });
    });
  }

  private fail(b: Batch, err: Error): void {
    for (const call of b.calls) call.reject(err);
  }

  /** Gives back what the leases did not use (waiting at most `timeoutMs`), then disconnects. */
  async close(timeoutMs = 500): Promise<void> {
    clearInterval(this.sweeper);
    if (this.ready) {
      for (const [keyId, lease] of this.leases) this.endLease(keyId, lease);
      if (this.busy) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, timeoutMs);
          this.idleWaiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    }
    this.leases.clear();
    try {
      await this.client.quit();
    } catch {
      // Not connected: nothing to say goodbye to; stop the reconnect loop instead.
    }
    this.client.disconnect();
  }
}
