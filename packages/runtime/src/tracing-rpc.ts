import { NatsContext, NatsRequestJSONDeserializer, type ServerNats } from '@nestjs/microservices';
import type { ServerSpan } from './tracing-sdk';
import { continueTrace, otel, parseTraceparent, TRACEPARENT, type RequestLogFields, type TraceContext } from './tracing';

/**
 * The service side of the trace: the caller's `traceparent` NATS header becomes this handler's
 * TraceContext, attached to the request's data (a symbol key: never serialised, never validated)
 * where parseRpc and the error filter find it. No AsyncLocalStorage: the context is a value on
 * the request. With tracing on, a server span is also opened for the handler and made the active
 * OpenTelemetry context around it (rpc server processing hooks), so pg's spans nest under it.
 */
const TRACE = Symbol('keyway.trace');

interface Headers {
  get(name: string): string;
}
interface Traced {
  [TRACE]?: TraceContext;
}

/** The open server spans by the message's headers object, which Nest's NatsContext holds too. */
const spans = new WeakMap<object, ServerSpan>();

class TraceDeserializer extends NatsRequestJSONDeserializer {
  override deserialize(value: { subject: string; headers?: Headers }, options?: Record<string, unknown>) {
    const message = super.deserialize(value, options) as { data?: unknown };
    const data = message.data;
    if (typeof data !== 'object' || data === null) return message as never;
    const parent = value.headers ? parseTraceparent(value.headers.get(TRACEPARENT)) : undefined;
    const sdk = otel();
    if (sdk !== undefined && parent !== undefined && value.headers !== undefined) {
      const span = sdk.serverSpan(value.subject, parent, { 'messaging.system': 'nats', 'messaging.destination.name': value.subject });
      spans.set(value.headers, span);
      (data as Traced)[TRACE] = span.ids;
    } else {
      (data as Traced)[TRACE] = continueTrace(parent);
    }
    return message as never;
  }
}

/** The deserializer for RpcServer's options: reads `traceparent` from the message headers. */
export function traceDeserializer(): NatsRequestJSONDeserializer {
  return new TraceDeserializer();
}

/** With tracing on: the handler runs inside its server span, which ends when the reply is sent. */
export function traceRpcServer<S extends ServerNats>(server: S): S {
  if (otel() === undefined) return server;
  const spanOf = (ctx: unknown): ServerSpan | undefined => {
    const headers = ctx instanceof NatsContext ? (ctx.getHeaders() as object | undefined) : undefined;
    return headers ? spans.get(headers) : undefined;
  };
  server.setOnProcessingStartHook((_transport, ctx, done) => {
    const span = spanOf(ctx);
    return span ? span.run(done) : done();
  });
  server.setOnProcessingEndHook((_transport, ctx) => spanOf(ctx)?.end());
  return server;
}

/** The trace a request's data (or its parsed `ctx`, see parseRpc) carries, if any. */
export function traceOf(value: unknown): TraceContext | undefined {
  return typeof value === 'object' && value !== null ? (value as Traced)[TRACE] : undefined;
}

/** Copies the trace onto another object of the same request (parseRpc's validated ctx). */
export function carryTrace<T extends object>(from: unknown, to: T): T {
  const t = traceOf(from);
  if (t !== undefined) (to as Traced)[TRACE] = t;
  return to;
}

const REQUEST_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

/**
 * `{request_id, trace_id}` for a log line about a request, from its raw data or its parsed ctx:
 * the request id only if it looks like one (the raw data is not validated yet).
 */
export function requestLogFields(value: unknown): RequestLogFields {
  const v = (typeof value === 'object' && value !== null ? value : {}) as { ctx?: { request_id?: unknown }; request_id?: unknown };
  const id = v.request_id ?? v.ctx?.request_id;
  const trace = traceOf(value) ?? traceOf(v.ctx);
  return {
    ...(typeof id === 'string' && REQUEST_ID.test(id) && { request_id: id }),
    ...(trace && { trace_id: trace.traceId }),
  };
}
