import { KeywayError, type ErrorBody } from '@keyway/contracts';
import { HttpException, Logger } from '@nestjs/common';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { httpStatus, INTERNAL } from '../errors';
import { noteErrorCode } from './http-metrics';
import { requestLogFields } from './request-trace';

const logger = new Logger('http');

/** Every non-2xx answer of the gateway goes out here: status from the code, body `{error, code, …}`. */
export function sendError(reply: FastifyReply, body: ErrorBody): FastifyReply {
  noteErrorCode(reply, body.code);
  return reply.code(httpStatus(body.code)).type('application/json; charset=utf-8').send(body);
}

interface FrameworkError {
  code?: unknown;
  statusCode?: unknown;
  status?: unknown;
  message?: unknown;
}

/**
 * Anything thrown on the way (Fastify's body parsing, Nest's 404, our own KeywayError, a bug) as
 * the documented error body. Unknown errors become `internal` and are logged, never shown.
 */
export function toHttpError(err: unknown, req?: FastifyRequest): ErrorBody {
  if (err instanceof KeywayError) return err.toBody();
  if (err instanceof HttpException) return fromStatus(err.getStatus(), err, req);
  const e = (typeof err === 'object' && err !== null ? err : {}) as FrameworkError;
  const code = typeof e.code === 'string' ? e.code : '';
  switch (code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_TYPE':
      return { error: 'Send JSON: only Content-Type application/json is accepted', code: 'unsupported_media_type' };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { error: 'The request body is larger than 1 MiB', code: 'payload_too_large' };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE_PARAMS':
    case 'FST_ERR_BAD_URL':
    case 'FST_ERR_ASYNC_CONSTRAINT':
      return { error: 'The request is malformed', code: 'invalid_request', details: [{ field: '(request)', message: String(e.message ?? code) }] };
    default:
      break;
  }
  const status = typeof e.statusCode === 'number' ? e.statusCode : typeof e.status === 'number' ? e.status : 500;
  return fromStatus(status, err, req);
}

function fromStatus(status: number, err: unknown, req: FastifyRequest | undefined): ErrorBody {
  switch (status) {
    case 400:
      return { error: 'The request is malformed', code: 'invalid_request', details: [{ field: '(request)', message: messageOf(err) }] };
    case 401:
      return { error: 'Not authenticated', code: 'unauthorized' };
    case 404:
    case 405:
      return { error: 'No such route', code: 'not_found' };
    case 413:
      return { error: 'The request body is larger than 1 MiB', code: 'payload_too_large' };
    case 415:
      return { error: 'Send JSON: only Content-Type application/json is accepted', code: 'unsupported_media_type' };
    case 503:
      return { error: 'Not ready', code: 'unavailable' };
    default:
      if (status >= 400 && status < 500) return { error: 'The request is malformed', code: 'invalid_request', details: [{ field: '(request)', message: messageOf(err) }] };
      // With the request's id and trace id when known: the operator finds the customer's request.
      logger.error({ ...(req && requestLogFields(req)), msg: 'internal error', err: err instanceof Error ? (err.stack ?? err.message) : String(err) });
      return INTERNAL;
  }
}

function messageOf(err: unknown): string {
  const m = (err as { message?: unknown } | null)?.message;
  return typeof m === 'string' ? m.slice(0, 200) : 'malformed request';
}

/**
 * The one error path of the gateway's own routes (`/v1`, `/admin/v1`): a refusal a step threw
 * (KeywayError), a body Fastify could not parse, a bug; always the documented shape.
 */
export function replyError(err: FastifyError | KeywayError, req: FastifyRequest, reply: FastifyReply): void {
  sendError(reply, toHttpError(err, req));
}
