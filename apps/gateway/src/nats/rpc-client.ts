import { KeywayError, type ErrorBody } from '@keyway/contracts';
import type { NatsConnection } from '@nats-io/transport-node';
import { fromServiceError } from '../errors';

export type RpcOutcome = { ok: true; response: unknown } | { ok: false; error: ErrorBody };

const enc = new TextEncoder();

/**
 * Request-reply to the Nest NATS services over the raw client: the Nest wire format
 * `{pattern, data, id}` → `{response}` | `{err}`, without ClientProxy's observable machinery on
 * the hot path. No answer (timeout, no responders, connection gone) is `unavailable`.
 */
export class RpcClient {
  private seq = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly gatewayId: string,
    private readonly timeoutMs: number,
  ) {}

  async call(subject: string, data: unknown, timeoutMs = this.timeoutMs): Promise<RpcOutcome> {
    const id = `${this.gatewayId}.${++this.seq}`;
    let raw: unknown;
    try {
      const msg = await this.nc.request(subject, enc.encode(JSON.stringify({ pattern: subject, data, id })), {
        timeout: timeoutMs,
      });
      raw = msg.json<unknown>();
    } catch {
      return { ok: false, error: { error: 'A service this request needs is not answering; try again', code: 'unavailable' } };
    }
    if (typeof raw !== 'object' || raw === null) return { ok: false, error: fromServiceError(undefined) };
    const reply = raw as { response?: unknown; err?: unknown };
    if (reply.err !== undefined && reply.err !== null) return { ok: false, error: fromServiceError(reply.err) };
    return { ok: true, response: reply.response };
  }

  /** For callers that want a thrown KeywayError rather than an outcome. */
  async callOrThrow(subject: string, data: unknown, timeoutMs?: number): Promise<unknown> {
    const r = await this.call(subject, data, timeoutMs);
    if (!r.ok) {
      const { error, code, ...extra } = r.error;
      throw new KeywayError(code, error, extra);
    }
    return r.response;
  }
}
