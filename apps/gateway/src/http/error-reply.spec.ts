import { Logger, type LoggerService } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { replyError } from './error-reply';

/** A gateway bug's log line: the customer's request id and the trace id, so the operator finds the request. */
describe('replyError on a bug', () => {
  const lines: unknown[] = [];
  const capture: LoggerService = { log: () => undefined, warn: () => undefined, error: (m: unknown) => void lines.push(m) };
  beforeAll(() => Logger.overrideLogger(capture));

  it('answers 500 internal and logs the request id and the trace id of the client traceparent', () => {
    const sent: { status?: number; body?: unknown } = {};
    const reply = {
      code(s: number) {
        sent.status = s;
        return this;
      },
      type() {
        return this;
      },
      send(b: unknown) {
        sent.body = b;
        return this;
      },
    } as unknown as FastifyReply;
    const req = { id: 'req_customer_1', headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }, trace: null } as unknown as FastifyRequest;
    replyError(new Error('a bug') as never, req, reply);
    expect(sent).toMatchObject({ status: 500, body: { code: 'internal' } });
    expect(JSON.stringify(sent.body)).not.toContain('a bug');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ request_id: 'req_customer_1', trace_id: '4bf92f3577b34da6a3ce929d0e0e4736' });
    expect(String((lines[0] as { err: unknown }).err)).toContain('a bug');
  });
});
