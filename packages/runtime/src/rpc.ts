import { Catch, type ArgumentsHost, type RpcExceptionFilter } from '@nestjs/common';
import { KeywayError, RpcRequest, invalidRequest, type ErrorBody, type RequestContext } from '@keyway/contracts';
import { Logger } from '@nestjs/common';
import { throwError, type Observable } from 'rxjs';
import type { z } from 'zod';
import type { TraceContext } from './tracing';
import { carryTrace, requestLogFields, traceOf } from './tracing-rpc';

const logger = new Logger('rpc');

/**
 * The one place a service turns a thrown error into the wire error: a KeywayError keeps its code,
 * anything else becomes `internal` without its message or stack (logged here instead, with the
 * customer's request id and the trace id, so the operator finds the request that failed).
 */
@Catch()
export class RpcErrorFilter implements RpcExceptionFilter<unknown> {
  catch(exception: unknown, host: ArgumentsHost): Observable<ErrorBody> {
    return throwError(() => toErrorBody(exception, host.getType() === 'rpc' ? host.getArgByIndex<unknown>(0) : undefined));
  }
}

function toErrorBody(exception: unknown, request: unknown): ErrorBody {
  if (exception instanceof KeywayError) return exception.toBody();
  logger.error({
    ...requestLogFields(request),
    msg: 'internal error',
    err: exception instanceof Error ? (exception.stack ?? exception.message) : String(exception),
  });
  return { error: 'Something went wrong on our side', code: 'internal' };
}

export interface ParsedRpc<P, Q, B> {
  /** The caller's context; it also carries the request's trace (`traceOf(ctx)`, `requestLogFields(ctx)`). */
  ctx: RequestContext;
  /** The trace this request belongs to (from the `traceparent` NATS header). */
  trace: TraceContext | undefined;
  params: P;
  query: Q;
  body: B;
}

/** Validates one routed request against the op's schemas; a failure is `invalid_request` with details. */
export function parseRpc<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType>(
  raw: unknown,
  schemas: { params?: P; query?: Q; body?: B },
): ParsedRpc<z.infer<P>, z.infer<Q>, z.infer<B>> {
  const envelope = RpcRequest.safeParse(raw);
  if (!envelope.success) throw invalidRequest(envelope.error, 'Malformed internal request');
  const part = <S extends z.ZodType>(schema: S | undefined, value: unknown, where: string): z.infer<S> => {
    if (!schema) return undefined as z.infer<S>;
    const r = schema.safeParse(value);
    if (!r.success) throw invalidRequest(r.error, `Invalid ${where}`);
    return r.data;
  };
  return {
    ctx: carryTrace(raw, envelope.data.ctx),
    trace: traceOf(raw),
    params: part(schemas.params, envelope.data.params, 'path parameters'),
    query: part(schemas.query, envelope.data.query, 'query parameters'),
    body: part(schemas.body, envelope.data.body ?? {}, 'body'),
  };
}
