import { Catch, type ArgumentsHost, type RpcExceptionFilter } from '@nestjs/common';
import { KeywayError, RpcRequest, invalidRequest, type ErrorBody, type RequestContext } from '@keyway/contracts';
import { Logger } from '@nestjs/common';
import { throwError, type Observable } from 'rxjs';
import type { z } from 'zod';

const logger = new Logger('rpc');

/**
 * The one place a service turns a thrown error into the wire error: a KeywayError keeps its code,
 * anything else becomes `internal` without its message or stack (logged here instead).
 */
@Catch()
export class RpcErrorFilter implements RpcExceptionFilter<unknown> {
  catch(exception: unknown, _host: ArgumentsHost): Observable<ErrorBody> {
    return throwError(() => toErrorBody(exception));
  }
}

function toErrorBody(exception: unknown): ErrorBody {
  if (exception instanceof KeywayError) return exception.toBody();
  logger.error(exception instanceof Error ? exception.stack ?? exception.message : String(exception));
  return { error: 'Something went wrong on our side', code: 'internal' };
}

export interface ParsedRpc<P, Q, B> {
  ctx: RequestContext;
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
    ctx: envelope.data.ctx,
    params: part(schemas.params, envelope.data.params, 'path parameters'),
    query: part(schemas.query, envelope.data.query, 'query parameters'),
    body: part(schemas.body, envelope.data.body ?? {}, 'body'),
  };
}
