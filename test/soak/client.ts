import { randomUUID } from 'node:crypto';
import type { Slot } from './topology';

/** One HTTP exchange as the client saw it. `status` 0: no answer (connection refused or cut). */
export interface Attempt {
  op: string;
  gateway: string;
  sentAt: number;
  answeredAt: number;
  status: number;
  code: string | undefined;
}

export interface Answer {
  status: number;
  body: Record<string, unknown> | null;
  gateway: string;
}

interface CallOptions {
  token: string;
  body?: unknown;
  /** Sent as Idempotency-Key on every attempt of this call (a POST retried after a kill is safe). */
  idempotencyKey?: string;
  /** Which gateway to try first (0 or 1); the other one takes the retries in turn. */
  prefer?: number;
  /** One attempt only, at the preferred gateway, whatever it answers (probes). */
  once?: boolean;
}

const ATTEMPTS = 8;
const now = (): number => performance.now();

/**
 * The load generator's HTTP client, as a careful API customer writes one: an answer it can act on
 * is returned; no answer (the gateway died mid-request or is restarting) or a `503` is retried on
 * the other gateway with the same Idempotency-Key, a few times with a short pause. Every attempt
 * is recorded, so the checks can match each 5xx and each cut connection against the kill windows.
 */
export class SoakClient {
  readonly attempts: Attempt[] = [];
  /** Calls answered only on a later attempt (after no answer or a 503), and calls never answered. */
  readonly retries = { answeredOnRetry: 0, onOtherGateway: 0, gaveUp: 0 };
  private turn = 0;

  constructor(private readonly gateways: readonly Slot[]) {}

  /** The gateway to try: the preferred one if it is up, else the next one that is. */
  private pick(prefer: number | undefined, attempt: number): number {
    const start = (prefer ?? this.turn++) + attempt;
    for (let i = 0; i < this.gateways.length; i++) {
      const g = (start + i) % this.gateways.length;
      if (this.gateways[g]!.up) return g;
    }
    return start % this.gateways.length;
  }

  async call(op: string, method: string, path: string, opts: CallOptions): Promise<Answer | undefined> {
    const idempotencyKey = opts.idempotencyKey ?? (method === 'POST' ? `soak-${randomUUID()}` : undefined);
    if (opts.once) {
      // A probe aims at one gateway; while that one is known to be down there is nothing to probe.
      const g = opts.prefer ?? 0;
      if (!this.gateways[g]!.up) return undefined;
      const answer = await this.send(op, g, method, path, opts.token, opts.body, idempotencyKey);
      return answer.status === 0 ? undefined : answer;
    }
    const tried = new Set<string>();
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const answer = await this.send(op, this.pick(opts.prefer, attempt), method, path, opts.token, opts.body, idempotencyKey);
      const retry = answer.status === 0 || answer.status === 503 || (answer.status === 409 && answer.body?.code === 'conflict' && isInFlight(answer));
      if (!retry) {
        if (attempt > 0) this.retries.answeredOnRetry++;
        if (tried.size > 0 && !tried.has(answer.gateway)) this.retries.onOtherGateway++;
        return answer;
      }
      tried.add(answer.gateway);
      await new Promise((r) => setTimeout(r, 100 + 100 * attempt));
    }
    this.retries.gaveUp++;
    return undefined;
  }

  private async send(op: string, g: number, method: string, path: string, token: string, body: unknown, idempotencyKey: string | undefined): Promise<Answer> {
    const slot = this.gateways[g]!;
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (idempotencyKey !== undefined) headers['idempotency-key'] = idempotencyKey;
    const sentAt = now();
    let status = 0;
    let parsed: Record<string, unknown> | null = null;
    try {
      const res = await fetch(`${slot.url}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(20_000),
      });
      const text = await res.text();
      status = res.status;
      try {
        parsed = text ? (JSON.parse(text) as Record<string, unknown>) : null;
      } catch {
        parsed = { unparsed: text.slice(0, 200) };
      }
    } catch {
      status = 0;
    }
    const code = typeof parsed?.code === 'string' ? parsed.code : undefined;
    this.attempts.push({ op, gateway: slot.name, sentAt, answeredAt: now(), status, code });
    return { status, body: parsed, gateway: slot.name };
  }
}

/** The idempotency layer's "still being processed" (the first attempt is still running somewhere). */
function isInFlight(answer: Answer): boolean {
  return typeof answer.body?.error === 'string' && answer.body.error.includes('still being processed');
}

export { now };
