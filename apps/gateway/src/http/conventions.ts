import { newId, type ErrorBody } from '@keyway/contracts';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { httpStatus } from '../errors';
import { sendError, toHttpError } from './error-reply';

/** A client's X-Request-Id is echoed only if it is a sane token; otherwise we mint `req_…`. */
const REQUEST_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

export function requestIdOf(header: string | string[] | undefined): string {
  return typeof header === 'string' && REQUEST_ID.test(header) ? header : newId('request');
}

/**
 * Errors Node's HTTP parser raises before Fastify sees a request (an unknown method, a header
 * line too long, garbage): still answered in the documented shape when the socket can take it.
 */
function clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const body: ErrorBody =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? { error: 'Request headers are too large', code: 'invalid_request', details: [{ field: '(headers)', message: 'too large' }] }
      : { error: 'The request could not be parsed as HTTP', code: 'invalid_request', details: [{ field: '(request)', message: 'malformed HTTP' }] };
  const text = JSON.stringify(body);
  const status = httpStatus(body.code);
  socket.end(
    `HTTP/1.1 ${status} Bad Request\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nX-Request-Id: ${newId('request')}\r\nConnection: close\r\n\r\n${text}`,
  );
}

export function fastifyOptions(bodyLimit: number): FastifyServerOptions {
  return {
    bodyLimit,
    genReqId: (req: IncomingMessage) => requestIdOf(req.headers['x-request-id']),
    // Nest logs through pino itself; Fastify's own logger stays off.
    logger: false,
    clientErrorHandler,
    // A bad URL is refused before the onRequest hooks run: set the request id here too.
    frameworkErrors: (error, req, reply) => {
      reply.header('x-request-id', req.id);
      sendError(reply, toHttpError(error));
    },
    routerOptions: { maxParamLength: 200, ignoreTrailingSlash: false },
  };
}

/**
 * Before any route (Nest's included): the request id on every answer, errors and 404s too, and
 * the one body parser — JSON. Without a parser for other types Fastify refuses them (415),
 * which is the documented answer. An empty JSON body is no body (e.g. a bare POST …/revoke).
 */
export function applyConventions(fastify: FastifyInstance): void {
  fastify.addHook('onRequest', (req, reply, done) => {
    reply.header('x-request-id', req.id);
    done();
  });
  fastify.removeAllContentTypeParsers();
  const json = fastify.getDefaultJsonParser('error', 'error');
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    void json(req, text, done);
  });
}
