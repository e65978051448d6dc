import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type Context, type Span } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { TraceContext } from './tracing';

/**
 * The OpenTelemetry side of tracing, loaded by tracing.ts only when OTEL_EXPORTER_OTLP_ENDPOINT
 * is set: the SDK's AsyncLocalStorage context manager turns on promise hooks for the whole
 * process, a cost the hot path does not pay when nobody collects the spans.
 */

// Built at load, before the services' modules require `pg`: the instrumentation patches modules
// as they are required (one loaded earlier only gets a warning).
const pg = new PgInstrumentation({ requireParentSpan: true });
let sdk: NodeSDK | undefined;

/** Starts the SDK for this process (once): spans to `${OTEL_EXPORTER_OTLP_ENDPOINT}/v1/traces` over OTLP/HTTP. */
export function start(service: string): void {
  if (sdk !== undefined) return;
  sdk = new NodeSDK({
    serviceName: process.env.OTEL_SERVICE_NAME ?? service,
    traceExporter: new OTLPTraceExporter(),
    instrumentations: [pg],
    // Traces only: metrics are Prometheus's (prom-client), logs are pino's.
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();
  // Spans still in the batch go out before a graceful exit (Nest's shutdown hooks end in exit).
  process.once('beforeExit', () => void sdk?.shutdown().catch(() => undefined));
}

const tracer = () => trace.getTracer('keyway');

function parentContext(parent: TraceContext): Context {
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: parent.traceId,
    spanId: parent.spanId,
    traceFlags: parent.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
    isRemote: true,
  });
}

function idsOf(span: Span, parent: TraceContext): TraceContext {
  const sc = span.spanContext();
  return { traceId: sc.traceId, spanId: sc.spanId, sampled: (sc.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED || parent.sampled };
}

interface OpenSpan {
  /** The span's own ids: what a request it makes carries as `traceparent`. */
  readonly ids: TraceContext;
  end(error?: string): void;
}

/** A client span (an RPC this process makes) under an explicitly carried parent. */
export function clientSpan(name: string, parent: TraceContext, attributes: Record<string, string>): OpenSpan {
  const span = tracer().startSpan(name, { kind: SpanKind.CLIENT, attributes }, parentContext(parent));
  return wrap(span, parent);
}

function wrap(span: Span, parent: TraceContext): OpenSpan {
  return {
    ids: idsOf(span, parent),
    end(error) {
      if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
      span.end();
    },
  };
}

/**
 * A service handler's server span under the caller's trace. `run` makes it the active context
 * (AsyncLocalStorage: the SDK is on) for the handler, so pg's query spans nest under it.
 */
export interface ServerSpan extends OpenSpan {
  run<T>(fn: () => T): T;
}
export function serverSpan(name: string, parent: TraceContext, attributes: Record<string, string>): ServerSpan {
  const ctx = parentContext(parent);
  const span = tracer().startSpan(name, { kind: SpanKind.SERVER, attributes }, ctx);
  const active = trace.setSpan(ctx, span);
  return { ...wrap(span, parent), run: (fn) => context.with(active, fn) };
}
