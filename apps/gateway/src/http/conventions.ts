import { KeywayError, newId, type ErrorBody } from '@keyway/contracts';
import type { FastifyHttpOptions, FastifyInstance, FastifyReply } from 'fastify';
import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import { httpStatus } from '../errors';
import { sendError, toHttpError } from './error-reply';
import { jsonDepthExceeds, MAX_JSON_DEPTH, mayHoldUnstorable, nulInUrl, unstorableFieldsOf } from './json-guard';

/** A client's X-Request-Id is echoed only if it is a sane token; otherwise we mint `req_…`. */
export const REQUEST_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

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
    `HTTP/1.1 ${status} Bad Request\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nX-Request-Id: ${newId('request')}\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n${text}`,
  );
}

/** For answers that carry a secret (a key, a root key): no cache on the way may keep them. */
export function noStore(reply: FastifyReply): FastifyReply {
  return reply.header('cache-control', 'no-store');
}

const invalid = (details: ErrorBody['details']): ErrorBody => ({ error: 'The request is invalid', code: 'invalid_request', details });
const MISSING_HOST = invalid([{ field: 'Host', message: 'HTTP/1.1 requests must send a Host header' }]);
const TOO_DEEP = invalid([{ field: '(body)', message: `JSON nested deeper than ${MAX_JSON_DEPTH} levels` }]);

export function fastifyOptions(bodyLimit: number, trustProxy: boolean | string[] = false): FastifyHttpOptions<Server> {
  return {
    bodyLimit,
    // TRUST_PROXY: only then does `req.ip` come from X-Forwarded-For.
    trustProxy,
    genReqId: (req: IncomingMessage) => requestIdOf(req.headers['x-request-id']),
    // Nest logs through pino itself; Fastify's own logger stays off.
    logger: false,
    clientErrorHandler,
    // Node would answer a Host-less HTTP/1.1 request itself, with a bare 400: the onRequest hook
    // below answers it in the documented shape instead.
    http: { requireHostHeader: false },
    // A bad URL is refused before the onRequest hooks run: set their headers here too.
    frameworkErrors: (error, req, reply) => {
      reply.header('x-request-id', req.id).header('x-content-type-options', 'nosniff');
      sendError(reply, toHttpError(error));
    },
    routerOptions: { maxParamLength: 200, ignoreTrailingSlash: false },
  };
}

/**
 * Before any route (Nest's included): the request id and `nosniff` on every answer, errors and
 * 404s too, the Host header HTTP/1.1 requires, and the one body parser — JSON. Without a parser
 * for other types Fastify refuses them (415), which is the documented answer. An empty JSON body
 * is no body (e.g. a bare POST …/revoke). The parser refuses JSON nested deeper than
 * MAX_JSON_DEPTH (scanned before JSON.parse), and NUL or a lone surrogate in any string or key; a
 * preValidation step refuses NUL in the query and path parameters (json-guard.ts). Both run after the routes' onRequest hooks (authentication), and
 * cost a request without `%00` in its URL or a `\u0000`/`\ud8…` escape in its body one native
 * search each.
 */
export function applyConventions(fastify: FastifyInstance): void {
  fastify.addHook('onRequest', (req, reply, done) => {
    reply.header('x-request-id', req.id).header('x-content-type-options', 'nosniff');
    if (req.headers.host === undefined && req.raw.httpVersion === '1.1') {
      sendError(reply, MISSING_HOST);
      return;
    }
    done();
  });
  fastify.addHook('preValidation', (req, reply, done) => {
    const details = nulInUrl(req.url, req.query, req.params);
    if (details.length === 0) {
      done();
      return;
    }
    sendError(reply, invalid([...details]));
  });
  fastify.removeAllContentTypeParsers();
  const json = fastify.getDefaultJsonParser('error', 'error');
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    // No body at all is no body; whitespace, `null` or anything else must be a JSON object.
    if (text === '') {
      done(null, undefined);
      return;
    }
    if (jsonDepthExceeds(text, MAX_JSON_DEPTH)) {
      done(new KeywayError('invalid_request', TOO_DEEP.error, { details: TOO_DEEP.details }));
      return;
    }
    if (!mayHoldUnstorable(text)) {
      void json(req, text, done);
      return;
    }
    void json(req, text, (err, value) => {
      const details = err ? [] : unstorableFieldsOf(value);
      if (details.length > 0) done(new KeywayError('invalid_request', 'The request is invalid', { details }));
      else done(err, value);
    });
  });
}
