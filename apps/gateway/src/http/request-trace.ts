import { continueTrace, parseTraceparent, TRACEPARENT, type RequestLogFields, type TraceContext } from '@keyway/runtime';
import type { FastifyInstance, FastifyRequest } from 'fastify';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's trace, made on first use (requestTrace): a whoami that logs nothing never pays for ids. */
    trace: TraceContext | null;
  }
}

export function registerRequestTrace(fastify: FastifyInstance): void {
  fastify.decorateRequest('trace', null);
}

/**
 * The request's trace: the client's valid `traceparent` continued (its trace id, a new span for
 * this hop), else a new trace. Carried as a value from here to the NATS headers (rpc-client.ts).
 */
export function requestTrace(req: FastifyRequest): TraceContext {
  return (req.trace ??= continueTrace(parseTraceparent(req.headers[TRACEPARENT])));
}

/** `{request_id, trace_id}`: what every log line written for the request carries. */
export function requestLogFields(req: FastifyRequest): Required<RequestLogFields> {
  return { request_id: req.id, trace_id: requestTrace(req).traceId };
}
