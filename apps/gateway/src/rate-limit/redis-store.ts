import type { RateLimit } from '@keyway/contracts';
import { Redis, type RedisOptions } from 'ioredis';
import { msUntilReset, WINDOW_MS, WINDOWS, type PerWindow, type WindowState } from './windows';

/**
 * Checks and increments the four windows of one key in one round trip, all or nothing.
 *
 * Why a script and not rate-limiter-flexible's RateLimiterRedis: each of its limiters has one
 * fixed `points` and one window, so four windows are four commands (RateLimiterUnion), and a call
 * refused by one window has already been counted by the others. Here a refused call changes
 * nothing, every key carries its own limits (ARGV), and the windows are aligned to Redis's clock,
 * so every gateway replica agrees on when a window starts whatever its own clock says.
 *
 * KEYS[1..4]: the counters, shortest window first. ARGV[1]: points to take (0 = only read).
 * ARGV[2..5]: the limits. ARGV[6..9]: the window sizes in ms.
 * Returns {allowed (1|0), now in ms (Redis TIME), count1..count4 after the call}.
 * Redis 7 replicates a script's effects, so writing after TIME is allowed.
 */
export const CONSUME_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cost = tonumber(ARGV[1])
local counts = {}
local allowed = 1
for i = 1, 4 do
  counts[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
  if cost > 0 and counts[i] + cost > tonumber(ARGV[1 + i]) then allowed = 0 end
end
if cost > 0 and allowed == 1 then
  for i = 1, 4 do
    counts[i] = redis.call('INCRBY', KEYS[i], cost)
    if counts[i] == cost then
      local size = tonumber(ARGV[5 + i])
      redis.call('PEXPIRE', KEYS[i], size - (now % size))
    end
  end
end
return {allowed, now, counts[1], counts[2], counts[3], counts[4]}
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
interface Pending {
  args: string[];
  resolve: (reply: number[]) => void;
  reject: (err: Error) => void;
}

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
    enableAutoPipelining: true,
  };
}

export class RedisWindowStore {
  readonly client: ScriptClient;
  /** Calls made since the last flush; sent together as one pipeline (see `apply`). */
  private pending: Pending[] = [];

  constructor(
    redisUrl: string,
    private readonly keyPrefix: string,
    commandTimeoutMs: number,
  ) {
    this.client = new Redis(redisUrl, fastFailRedisOptions(commandTimeoutMs)) as ScriptClient;
    this.client.defineCommand('keywayRateLimit', { numberOfKeys: WINDOWS.length, lua: CONSUME_SCRIPT });
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

  async apply(keyId: string, limits: RateLimit, cost: number): Promise<WindowState> {
    const args = [
      ...WINDOWS.map((w) => this.keyOf(keyId, w)),
      String(cost),
      ...WINDOWS.map((w) => String(limits[w])),
      ...WINDOWS.map((w) => String(WINDOW_MS[w])),
    ];
    const reply = await new Promise<number[]>((resolve, reject) => {
      if (this.pending.length === 0) setImmediate(this.flush);
      this.pending.push({ args, resolve, reject });
    });
    const now = Number(reply[1]);
    const counts = {} as PerWindow<number>;
    const resetMs = {} as PerWindow<number>;
    WINDOWS.forEach((w, i) => {
      counts[w] = Number(reply[2 + i] ?? 0);
      resetMs[w] = msUntilReset(now, w);
    });
    return { allowed: reply[0] === 1, counts, resetMs };
  }

  /**
   * Sends every call queued since the last flush in one pipeline: one write to Redis (and one
   * reply read) for all the requests whose bytes arrived in the same turn of the event loop,
   * instead of one each. ioredis' auto-pipelining flushes on process.nextTick, i.e. after every
   * single request under HTTP load; setImmediate waits for the end of the I/O phase, not longer.
   * Each call keeps its own command timeout and its own answer.
   */
  private readonly flush = (): void => {
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 1) {
      const only = batch[0]!;
      this.client.keywayRateLimit(...only.args).then(only.resolve, only.reject);
      return;
    }
    const pipeline = this.client.pipeline() as unknown as ScriptPipeline;
    for (const call of batch) {
      pipeline.keywayRateLimit(...call.args, (err, reply) => (err ? call.reject(err) : call.resolve(reply ?? [])));
    }
    // Failures reach each call through its callback.
    pipeline.exec().catch(() => undefined);
  };

  async close(): Promise<void> {
    try {
      await this.client.quit();
    } catch {
      // Not connected: nothing to say goodbye to; stop the reconnect loop instead.
    }
    this.client.disconnect();
  }
}
