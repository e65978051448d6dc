import { connect, createServer, type Server, type Socket } from 'node:net';
import type { RateLimit, RateLimitWindow } from '@keyway/contracts';
import type { Arbitrary, default as FastCheck } from 'fast-check';
import type { RateLimiter } from './rate-limiter';
import { BUCKETS, OVER_ADMISSION_ERROR, SLIDING, WINDOW_MS, type RateLimitDecision } from './windows';

/**
 * Test helper: waits until the clock-aligned `window` (UTC-aligned second, minute, hour, day)
 * has at least `marginMs` left. Only the daily quota still resets at such a boundary; the
 * sliding windows have none, so for them this only costs a short wait (kept for callers written
 * against the fixed windows). Tests of window edges use the limiter's `clock` option instead.
 */
export async function awayFromBoundary(window: RateLimitWindow, marginMs: number): Promise<void> {
  const size = WINDOW_MS[window];
  const left = size - (Date.now() % size);
  if (left < marginMs) await new Promise((r) => setTimeout(r, left + 5));
}

/** Test helper: a clock the test moves by hand (ms since the epoch). */
export function manualClock(startMs: number): { now: () => number; set: (ms: number) => void; advance: (ms: number) => void } {
  let t = startMs;
  return {
    now: () => t,
    set: (ms) => {
      t = ms;
    },
    advance: (ms) => {
      t += ms;
    },
  };
}

/** Test helper: a logger that records what it was told. */
export function recordingLogger(): { warn: (m: string) => void; log: (m: string) => void; lines: Array<[string, string]> } {
  const lines: Array<[string, string]> = [];
  return { lines, warn: (m) => void lines.push(['warn', m]), log: (m) => void lines.push(['log', m]) };
}

/**
 * Test helper: a TCP proxy in front of Redis that can stop answering while keeping the connection
 * open, which is what a hung Redis looks like (CLIENT PAUSE would pause every other user of the
 * shared server too).
 */
export class HangingProxy {
  private hung = false;
  private readonly sockets = new Set<Socket>();
  private constructor(private readonly server: Server, readonly port: number) {}

  static async start(target: { host: string; port: number }): Promise<HangingProxy> {
    let proxy: HangingProxy | undefined;
    const server = createServer((client) => {
      const upstream = connect(target.port, target.host);
      proxy?.sockets.add(client).add(upstream);
      // While hung, bytes wait here (TCP never drops them): like a Redis busy for a while.
      const relay = (to: Socket) => (chunk: Buffer) => {
        if (proxy?.hung) proxy.held.push(() => to.write(chunk));
        else to.write(chunk);
      };
      client.on('data', relay(upstream));
      upstream.on('data', relay(client));
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    proxy = new HangingProxy(server, typeof address === 'object' && address ? address.port : 0);
    return proxy;
  }

  private readonly held: Array<() => void> = [];

  /** Holds every byte both ways: commands get no reply until `resume()`. */
  hang(): void {
    this.hung = true;
  }

  resume(): void {
    this.hung = false;
    for (const send of this.held.splice(0)) send();
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

/** One step of a scripted run: move the clock, then make `calls` calls at once on the key. */
export type Step = { kind: 'calls'; advanceMs: number; calls: number } | { kind: 'retry' };

export interface Event {
  at: number;
  decision: RateLimitDecision;
}

/**
 * Test helper: plays `steps` against `limiter` on `clock`, one key. A `retry` step waits the
 * Retry-After of the last refusal (nothing else happens meanwhile) and makes one call, which must
 * pass: `retryBroken` lists those that did not.
 */
export async function play(
  limiter: Pick<RateLimiter, 'consume'>,
  clock: ReturnType<typeof manualClock>,
  keyId: string,
  limits: RateLimit,
  steps: readonly Step[],
): Promise<{ events: Event[]; retryBroken: Event[] }> {
  const events: Event[] = [];
  const retryBroken: Event[] = [];
  let lastRefused: RateLimitDecision | undefined;
  for (const step of steps) {
    if (step.kind === 'retry') {
      if (lastRefused === undefined) continue;
      clock.advance((lastRefused.retryAfterSeconds ?? 0) * 1000);
      const decision = await limiter.consume(keyId, limits);
      const event = { at: clock.now(), decision };
      events.push(event);
      if (!decision.allowed) retryBroken.push(event);
      lastRefused = decision.allowed ? undefined : decision;
      continue;
    }
    clock.advance(step.advanceMs);
    const decisions = await Promise.all(Array.from({ length: step.calls }, () => limiter.consume(keyId, limits)));
    for (const decision of decisions) events.push({ at: clock.now(), decision });
    const refused = decisions.filter((d) => !d.allowed);
    lastRefused = refused.length > 0 ? refused[refused.length - 1] : undefined;
  }
  return { events, retryBroken };
}

/**
 * Test helper: checks a run against the promises of windows.ts, from the outside.
 * - `over`: an interval shorter than a sliding window that holds more than its limit × (1 +
 *   OVER_ADMISSION_ERROR) admitted calls, or a UTC day more than its quota.
 * - `under`: a refused call that an exact log over the window plus one bucket would have admitted
 *   (the stated bound on the other side: a call counts at most one bucket longer than W).
 */
export function checkRun(events: readonly Event[], limits: RateLimit): { over: string[]; under: string[] } {
  const over: string[] = [];
  const under: string[] = [];
  const admitted = events.filter((e) => e.decision.allowed).map((e) => e.at);
  for (const w of SLIDING) {
    const size = WINDOW_MS[w];
    let from = 0;
    for (let i = 0; i < admitted.length; i++) {
      while (admitted[from]! <= admitted[i]! - size) from++;
      const inside = i - from + 1;
      if (inside > limits[w] * (1 + OVER_ADMISSION_ERROR)) over.push(`${w}: ${inside} calls in (${admitted[i]! - size}, ${admitted[i]}]`);
    }
  }
  const perDay = new Map<number, number>();
  for (const at of admitted) perDay.set(Math.floor(at / WINDOW_MS.daily), (perDay.get(Math.floor(at / WINDOW_MS.daily)) ?? 0) + 1);
  for (const [day, n] of perDay) if (n > limits.daily) over.push(`daily: ${n} calls on day ${day}`);

  // Calls made at the same moment count as before a refusal whatever the order they were listed
  // in: replicas' batches reach Redis in either order, and a batch admits first come first served.
  for (const e of events) {
    if (e.decision.allowed) continue;
    const upTo = admitted.filter((at) => at <= e.at);
    const justified =
      SLIDING.some((w) => upTo.filter((at) => at > e.at - WINDOW_MS[w] - WINDOW_MS[w] / BUCKETS[w]).length >= limits[w]) ||
      upTo.filter((at) => Math.floor(at / WINDOW_MS.daily) === Math.floor(e.at / WINDOW_MS.daily)).length >= limits.daily;
    if (!justified) under.push(`refused at ${e.at} (${e.decision.window}) though every window had room`);
  }
  return { over, under };
}

/**
 * Test helper: the arbitraries of the property tests, for fast-check handed in by the spec (a
 * type-only import here, so the built helper needs no test dependency). Steps like window and
 * bucket edges, the places where fixed windows let a limit through twice; limits are small so
 * that every window bites; start times anywhere in 2026, or just before a UTC midnight.
 */
export function runArbitraries(fc: typeof FastCheck): {
  limitsArb: Arbitrary<RateLimit>;
  startArb: Arbitrary<number>;
  stepsArb: Arbitrary<Step[]>;
} {
  const advanceMs = fc.oneof(
    fc.integer({ min: 0, max: 40 }),
    fc.integer({ min: 0, max: 1_300 }),
    fc.constantFrom(99, 100, 101, 999, 1_000, 1_001, 2_999, 3_000, 59_999, 60_000, 60_001),
    fc.integer({ min: 0, max: 70_000 }),
    fc.integer({ min: 0, max: 3_700_000 }),
  );
  const step: Arbitrary<Step> = fc.oneof(
    { weight: 6, arbitrary: fc.record({ kind: fc.constant('calls' as const), advanceMs, calls: fc.integer({ min: 1, max: 4 }) }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'retry' as const }) },
  );
  return {
    limitsArb: fc.record({
      burst_per_second: fc.integer({ min: 1, max: 6 }),
      per_minute: fc.integer({ min: 1, max: 15 }),
      per_hour: fc.integer({ min: 1, max: 30 }),
      daily: fc.integer({ min: 1, max: 40 }),
    }),
    startArb: fc.oneof(
      fc.integer({ min: Date.parse('2026-01-01T00:00:00Z'), max: Date.parse('2027-01-01T00:00:00Z') }),
      fc.integer({ min: Date.parse('2026-11-24T23:59:55Z'), max: Date.parse('2026-11-24T23:59:59.999Z') }),
    ),
    stepsArb: fc.array(step, { minLength: 1, maxLength: 40 }),
  };
}
