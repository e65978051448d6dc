import type { RateLimit } from '@keyway/contracts';
import { Redis, type RedisOptions } from 'ioredis';
import { LAYOUT, SLOT_SHIFT, WINDOW_MS, WINDOWS, type Clock, type PerWindow, type WindowState } from './windows';

const lua = (i: number): number => i + 1;

/**
 * `applyCalls` (windows.ts) in Lua, over one key's state stored as one MessagePack array: checks
 * and counts every window in one atomic run, for a whole batch of calls on that key at once.
 * Generated from the same constants (LAYOUT) as the memory store, so the two cannot drift; a
 * test runs both on the same calls and compares every answer.
 *
 * Why a script and not rate-limiter-flexible's RateLimiterRedis: each of its limiters has one
 * fixed `points` and one window, so four windows are four commands, a call refused by one window
 * has already been counted by the others, and none of them slides the way this does (see
 * BUCKETS). Here a refused call changes nothing, every key carries its own limits (ARGV), and the
 * time is Redis's, so every gateway replica agrees whatever its own clock says.
 *
 * KEYS[1]: the key's state. ARGV[1]: points each call takes (0 = only read). ARGV[2..5]: the
 * limits, shortest window first. ARGV[6]: calls in the batch. ARGV[7]: the time in ms, for tests
 * only (an injected clock); empty in production, where the time is Redis TIME.
 * Returns {admitted, now, count1..count4 after the batch, ms until each window frees}.
 * Redis 7 replicates a script's effects, so writing after TIME is allowed.
 */
const CONSUME_SCRIPT = `
local WIN = {${LAYOUT.windows.map((L) => `{${L.size}, ${L.bucket}, ${L.slots}, ${lua(L.head)}, ${lua(L.tail)}, ${lua(L.total)}, ${lua(L.buckets)}}`).join(', ')}}
local DAY = ${WINDOW_MS.daily}
local SHIFT = ${SLOT_SHIFT}
local now
if ARGV[7] ~= '' then
  now = tonumber(ARGV[7])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local cost = tonumber(ARGV[1])
local n = tonumber(ARGV[6])
local raw = redis.call('GET', KEYS[1])
local s
if raw then
  s = cmsgpack.unpack(raw)
else
  s = {}
  for i = 1, ${LAYOUT.size} do s[i] = 0 end
end
if s[${lua(LAYOUT.latest)}] > now then now = s[${lua(LAYOUT.latest)}] end
local day = math.floor(now / DAY)
if s[${lua(LAYOUT.day)}] ~= day then
  s[${lua(LAYOUT.day)}] = day
  s[${lua(LAYOUT.dayCount)}] = 0
end
local counts = {}
local room = math.huge
for w = 1, ${LAYOUT.windows.length} do
  local L = WIN[w]
  local from = now - L[1]
  local head, tail, total = s[L[4]], s[L[5]], s[L[6]]
  while tail <= head do
    local at = L[7] + tail % L[3]
    local v = s[at]
    local c = math.floor(v / SHIFT)
    if c > 0 and tail * L[2] + v % SHIFT > from then break end
    total = total - c
    s[at] = 0
    tail = tail + 1
  end
  local j = math.floor(now / L[2])
  if j > head then head = j end
  if total == 0 then tail = head end
  s[L[4]], s[L[5]], s[L[6]] = head, tail, total
  counts[w] = total
  if cost > 0 then
    local r = math.floor((tonumber(ARGV[1 + w]) - total) / cost)
    if r < room then room = r end
  end
end
counts[4] = s[${lua(LAYOUT.dayCount)}]
if cost > 0 then
  local r = math.floor((tonumber(ARGV[5]) - counts[4]) / cost)
  if r < room then room = r end
end
local admit = n
local taken = 0
if cost > 0 then
  admit = math.max(0, math.min(n, room))
  taken = admit * cost
end
if taken > 0 then
  for w = 1, ${LAYOUT.windows.length} do
    local L = WIN[w]
    local head = s[L[4]]
    local at = L[7] + head % L[3]
    s[at] = (math.floor(s[at] / SHIFT) + taken) * SHIFT + (now - head * L[2])
    s[L[6]] = s[L[6]] + taken
    counts[w] = counts[w] + taken
  end
  s[${lua(LAYOUT.dayCount)}] = s[${lua(LAYOUT.dayCount)}] + taken
  counts[4] = counts[4] + taken
  s[${lua(LAYOUT.latest)}] = now
  -- Kept while a window may still count its calls: the hour, or the day's quota until 00:00 UTC.
  redis.call('SET', KEYS[1], cmsgpack.pack(s), 'PX', math.max(DAY - now % DAY, ${WINDOW_MS.per_hour}))
end
local nxt = math.max(cost, 1)
local reply = {admit, now, counts[1], counts[2], counts[3], counts[4]}
for w = 1, ${LAYOUT.windows.length} do
  local L = WIN[w]
  local needed = math.max(1, counts[w] + nxt - tonumber(ARGV[1 + w]))
  local freed = 0
  local free = L[1]
  for i = s[L[5]], s[L[4]] do
    local v = s[L[7] + i % L[3]]
    freed = freed + math.floor(v / SHIFT)
    if freed >= needed then
      free = i * L[2] + v % SHIFT + L[1] - now
      break
    end
  end
  reply[6 + w] = free
end
reply[10] = DAY - now % DAY
return reply
`;

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
}

const sameLimits = (a: RateLimit, b: RateLimit): boolean => a === b || WINDOWS.every((w) => a[w] === b[w]);

/**
 * Fails fast: no offline queue (a command while disconnected rejects at once), no per-command
 * retries, a small command timeout. ioredis keeps reconnecting in the background.
 */
function fastFailRedisOptions(commandTimeoutMs: number): RedisOptions {
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
 * replicas together never admit more than a limit. Batching keeps Redis off most requests' own
 * path: calls are queued and sent as one pipeline, with one script run per key, and one pipeline
 * is in flight at a time, so the calls made while it travels go together in the next (group
 * commit). The busier the gateway, the bigger the batches.
 *
 * There used to be leases here (a busy key's replica counting calls ahead in Redis and admitting
 * them locally until the end of the second). They are gone: they served a call only for a key
 * with 1,000 calls to spare in every window, which the default tenant ceiling (1,000 per second)
 * never allows, and with 10,000 keys on the default limits the bench measured the same round
 * trips and script runs per call with and without them (gateway README, "Rate limits").
 */
export class RedisWindowStore {
  readonly client: ScriptClient;
  /** Calls made since the last flush, by key; sent together as one pipeline (see `flush`). */
  private pending = new Map<string, Batch[]>();
  /** A flush is scheduled, or a pipeline is on its way to Redis and back. */
  private busy = false;

  constructor(
    redisUrl: string,
    private readonly keyPrefix: string,
    commandTimeoutMs: number,
    /** Tests only: the time the script uses instead of Redis TIME. */
    private readonly clock?: Clock,
  ) {
    this.client = new Redis(redisUrl, fastFailRedisOptions(commandTimeoutMs)) as ScriptClient;
    this.client.defineCommand('keywayRateLimit', { numberOfKeys: 1, lua: CONSUME_SCRIPT });
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

  /** The `{keyId}` hash tag keeps whatever else a key may get one day in the same Cluster slot. */
  keyOf(keyId: string): string {
    return `${this.keyPrefix}{${keyId}}`;
  }

  /** Counts one call (`cost` points; 0 only reads) on `keyId`, with the other calls of its batch. */
  apply(keyId: string, limits: RateLimit, cost: number): Promise<WindowState> {
    return new Promise<WindowState>((resolve, reject) => {
      this.enqueue(keyId, limits, cost).calls.push({ resolve, reject });
    });
  }

  private enqueue(keyId: string, limits: RateLimit, cost: number): Batch {
    if (!this.busy) {
      this.busy = true;
      setImmediate(this.flush);
    }
    let batches = this.pending.get(keyId);
    if (batches === undefined) {
      batches = [];
      this.pending.set(keyId, batches);
    }
    let batch = batches.find((b) => b.cost === cost && sameLimits(b.limits, limits));
    if (batch === undefined) {
      batch = { keyId, limits, cost, calls: [] };
      batches.push(batch);
    }
    return batch;
  }

  /**
   * Sends every batch queued since the last flush in one pipeline: one write to Redis (and one
   * reply read) for all of them, and one script run per key among them. One pipeline is in flight
   * at a time (see the class); an idle gateway still sends at the end of the I/O phase
   * (setImmediate), not later. Each batch keeps its own command timeout; when a pipeline fails,
   * the calls queued behind it fail at once with the same error (the limiter answers them from
   * memory) rather than wait out a second timeout.
   */
  private readonly flush = (): void => {
    const batches: Batch[] = [];
    for (const list of this.pending.values()) for (const b of list) batches.push(b);
    this.pending = new Map();
    if (batches.length === 0) {
      this.busy = false;
      return;
    }
    const now = this.clock === undefined ? '' : String(Math.floor(this.clock()));
    let left = batches.length;
    let failure: Error | undefined;
    const settled = (): void => {
      if (--left > 0) return;
      if (failure !== undefined) this.failQueued(failure);
      // The next pipeline leaves at the end of this I/O phase, not from inside Redis's reply: the
      // requests read after the reply in the same phase go with it instead of waiting a round trip.
      setImmediate(this.flush);
    };
    const reply = (b: Batch) => (err: Error | null | undefined, result?: number[]): void => {
      if (err) {
        failure = err;
        this.fail(b, err);
      } else this.answer(b, result ?? []);
      settled();
    };
    if (batches.length === 1) {
      const only = batches[0]!;
      const done = reply(only);
      this.client.keywayRateLimit(...this.argsOf(only, now)).then(
        (r) => done(null, r),
        (err: Error) => done(err),
      );
      return;
    }
    const pipeline = this.client.pipeline() as unknown as ScriptPipeline;
    for (const b of batches) pipeline.keywayRateLimit(...this.argsOf(b, now), reply(b));
    // Failures reach each batch through its callback.
    pipeline.exec().catch(() => undefined);
  };

  private failQueued(err: Error): void {
    const queued = this.pending;
    this.pending = new Map();
    for (const list of queued.values()) for (const b of list) this.fail(b, err);
  }

  private argsOf(b: Batch, now: string): string[] {
    const l = b.limits;
    return [
      this.keyOf(b.keyId),
      String(b.cost),
      String(l.burst_per_second),
      String(l.per_minute),
      String(l.per_hour),
      String(l.daily),
      String(b.calls.length),
      now,
    ];
  }

  /**
   * The first `admitted` calls of the batch pass, in the order they were made, each seeing the
   * counts as they were just after it (so their RateLimit-Remaining go down one by one); the
   * others are refused and see the counts the admitted ones left.
   */
  private answer(b: Batch, reply: number[]): void {
    const admitted = Number(reply[0] ?? 0);
    const after = {} as PerWindow<number>;
    const resetMs = {} as PerWindow<number>;
    WINDOWS.forEach((w, i) => {
      after[w] = Number(reply[2 + i] ?? 0);
      resetMs[w] = Number(reply[6 + i] ?? WINDOW_MS[w]);
    });
    b.calls.forEach((call, j) => {
      if (b.cost === 0) return call.resolve({ allowed: true, counts: after, resetMs });
      if (j >= admitted) return call.resolve({ allowed: false, counts: after, resetMs });
      const later = (admitted - 1 - j) * b.cost;
      const counts = {} as PerWindow<number>;
      for (const w of WINDOWS) counts[w] = after[w] - later;
      call.resolve({ allowed: true, counts, resetMs });
    });
  }

  private fail(b: Batch, err: Error): void {
    for (const call of b.calls) call.reject(err);
  }

  async close(): Promise<void> {
    try {
      await this.client.quit();
    } catch {
      // Not connected: nothing to say goodbye to; stop the reconnect loop instead.
    }
    this.client.disconnect();
  }
}
