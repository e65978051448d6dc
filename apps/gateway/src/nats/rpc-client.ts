import type { ErrorBody } from '@keyway/contracts';
import { connectionInbox, formatTraceparent, otel, rpcMetrics, TRACEPARENT, TurnQueue, type RpcSeries, type TraceContext } from '@keyway/runtime';
import { headers, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { fromServiceError, UNAVAILABLE as UNAVAILABLE_BODY } from '../errors';

/** `replayed`: the service answered a retried POST with its first answer (Idempotency-Key). */
export type RpcOutcome = ({ ok: true; response: unknown } | { ok: false; error: ErrorBody }) & { replayed?: true };

const enc = new TextEncoder();

const UNAVAILABLE: RpcOutcome = { ok: false, error: UNAVAILABLE_BODY };

/**
 * A request larger than the connection's max_payload (1 MiB by default) would be refused by the
 * client when published, which used to end in a 503: a body just under the 1 MiB body limit plus
 * its envelope (ctx, params, query) is over it. It is the caller's request that is too large.
 */
const TOO_LARGE: RpcOutcome = {
  ok: false,
  error: { error: 'The request is too large to pass on: keep the body a few hundred bytes under 1 MiB', code: 'payload_too_large' },
};
const TOO_LARGE_NOW: Promise<RpcOutcome> = Promise.resolve(TOO_LARGE);

interface Pending {
  resolve: (outcome: RpcOutcome) => void;
  timer: NodeJS.Timeout;
  started: number;
  metrics: RpcSeries;
  /** The client span, when spans are exported. */
  span: { end(error?: string): void } | undefined;
}

/**
 * Request-reply to the Nest NATS services: the Nest wire format `{pattern, data, id}` →
 * `{response}` | `{err}`. One subscription on this gateway's own inbox (`_INBOX.<nuid>.*`)
 * takes every reply, and a map finds the caller by the reply subject's last token: what
 * `nc.request` does, without what it costs on every call (nats.js builds an Error with a stack
 * trace when it settles each request, even a successful one: 4% of the gateway's CPU on a
 * proxied GET). No answer (timeout, no responders, connection gone) is `unavailable`.
 */
export class RpcClient {
  /** Under the connection's inbox prefix: a NATS user may read its own inbox only (nats-options.ts). */
  private readonly inbox: string;
  private readonly pending = new Map<string, Pending>();
  private readonly sub: Subscription;
  /**
   * Requests are published together at the end of the turn: nats.js writes what was published
   * before its next microtask in one socket write, so the requests of one turn (all answered by
   * the rate limiter at its end) leave in one write instead of a few each.
   */
  private readonly outbox = new TurnQueue(() => undefined);
  private seq = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly gatewayId: string,
    private readonly timeoutMs: number,
  ) {
    this.inbox = `${connectionInbox(nc)}.`;
    this.sub = nc.subscribe(`${this.inbox}*`, { callback: (err, msg) => (err ? undefined : this.onReply(msg)) });
  }

  /**
   * `trace`: the request's trace (the gateway's hop), sent as the `traceparent` NATS header so the
   * service's handler and its log lines join it; with spans exported, a client span sits between.
   */
  call(subject: string, data: unknown, timeoutMs = this.timeoutMs, trace?: TraceContext): Promise<RpcOutcome> {
    const token = (++this.seq).toString(36);
    const payload = enc.encode(JSON.stringify({ pattern: subject, data, id: `${this.gatewayId}.${token}` }));
    const max = this.nc.info?.max_payload;
    if (max !== undefined && payload.length > max) return TOO_LARGE_NOW;
    const metrics = rpcMetrics(subject);
    const sdk = trace === undefined ? undefined : otel();
    const span = sdk && trace ? sdk.clientSpan(subject, trace, { 'messaging.system': 'nats', 'messaging.destination.name': subject }) : undefined;
    const hop = span?.ids ?? trace;
    let h: ReturnType<typeof headers> | undefined;
    if (hop !== undefined) {
      h = headers();
      h.set(TRACEPARENT, formatTraceparent(hop));
    }
    return new Promise<RpcOutcome>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(token);
        metrics.timeouts.n += 1;
        span?.end('timeout');
        resolve(UNAVAILABLE);
      }, timeoutMs);
      // A pending call never keeps a closing process alive; it just answers `unavailable`.
      timer.unref();
      this.pending.set(token, { resolve, timer, started: performance.now(), metrics, span });
      this.outbox.push(() => {
        try {
          this.nc.publish(subject, payload, h === undefined ? { reply: this.inbox + token } : { reply: this.inbox + token, headers: h });
        } catch {
          // Closed or draining connection.
          this.settle(token, UNAVAILABLE);
        }
      });
    });
  }

  /** Answers every call still waiting with `unavailable` and stops listening. */
  close(): void {
    for (const token of [...this.pending.keys()]) this.settle(token, UNAVAILABLE);
    this.sub.unsubscribe();
  }

  private onReply(msg: Msg): void {
    const token = msg.subject.slice(this.inbox.length);
    // The server's "no responders" status: an empty message with a 503 header.
    if (msg.data.length === 0 && msg.headers?.code === 503) return void this.settle(token, UNAVAILABLE);
    if (!this.pending.has(token)) return; // answered after its timeout
    let raw: unknown;
    try {
      raw = msg.json<unknown>();
    } catch {
      return void this.settle(token, { ok: false, error: fromServiceError(undefined) });
    }
    if (typeof raw !== 'object' || raw === null) return void this.settle(token, { ok: false, error: fromServiceError(undefined) });
    const reply = raw as { response?: unknown; err?: unknown; replayed?: unknown };
    const replayed = reply.replayed === true ? ({ replayed: true } as const) : {};
    if (reply.err !== undefined && reply.err !== null) return void this.settle(token, { ok: false, error: fromServiceError(reply.err), ...replayed });
    this.settle(token, { ok: true, response: reply.response, ...replayed });
  }

  private settle(token: string, outcome: RpcOutcome): void {
    const p = this.pending.get(token);
    if (p === undefined) return;
    this.pending.delete(token);
    clearTimeout(p.timer);
    p.metrics.duration.observe((performance.now() - p.started) / 1000);
    p.span?.end(outcome.ok ? undefined : outcome.error.code);
    p.resolve(outcome);
  }
}
