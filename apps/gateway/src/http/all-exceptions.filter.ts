import { Catch, HttpException, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { sendError, toHttpError } from './error-reply';

/**
 * Nest's side of the error shape: its 404 for unknown routes, /health answers and anything thrown
 * in a Nest handler become `{error, code}`. The readiness probe keeps its per-check report.
 */
@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    if (reply.sent) return;
    const body = toHttpError(exception);
    if (exception instanceof HttpException && exception.getStatus() === 503) {
      const report = exception.getResponse();
      sendError(reply, { ...body, ...(typeof report === 'object' && report !== null ? { checks: report } : {}) });
      return;
    }
    sendError(reply, body);
  }
}
