import { randomFillSync } from 'node:crypto';
import type * as Sdk from './tracing-sdk';

/**
 * W3C trace context, carried by hand: the gateway takes a client's `traceparent` (or starts a
 * trace), sends it in the NATS headers of each request, and a service's handler reads it from
 * there (rpc-trace.ts). The ids reach every log line of the request on both sides of the bus.
 *
 * Why by hand and not with OpenTelemetry's context: its context manager is AsyncLocalStorage, and
 * the first `run` turns on Node 20's promise hooks for the life of the process (see logger.ts):
 * every promise of every request would pay for it. So the SDK is loaded only when spans are
 * exported (OTEL_EXPORTER_OTLP_ENDPOINT), and the context travels as a value either way.
 */
export interface TraceContext {
  /** 32 lowercase hex digits. */
  readonly traceId: string;
  /** This hop's span: 16 lowercase hex digits. */
  readonly spanId: string;
  readonly sampled: boolean;
}

export const TRACEPARENT = 'traceparent';

const FORMAT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** A valid `traceparent` header as a context, else undefined (W3C Trace Context, level 1). */
export function parseTraceparent(value: unknown): TraceContext | undefined {
  if (typeof value !== 'string' || value.length < 55 || value.length > 512) return undefined;
  const m = FORMAT.exec(value);
  if (m === null) return undefined;
  const [, version, traceId, spanId, flags, rest] = m as unknown as [string, string, string, string, string, string | undefined];
  // Version ff is invalid; version 00 has nothing after the flags (a later version may).
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return { traceId, spanId, sampled: (parseInt(flags, 16) & 1) === 1 };
}

export function formatTraceparent(t: TraceContext): string {
  return `00-${t.traceId}-${t.spanId}-${t.sampled ? '01' : '00'}`;
}

// Random ids from a pooled buffer: one randomFillSync per 170 traces, not a syscall per request.
const pool = Buffer.allocUnsafe(4096);
let used = pool.length;
function randomHex(bytes: number): string {
  if (used + bytes > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const hex = pool.toString('hex', used, used + bytes);
  used += bytes;
  return hex;
}

/** A new trace (sampled: whoever collects decides), or this hop's span under the caller's. */
export function continueTrace(parent: TraceContext | undefined): TraceContext {
  return parent === undefined
    ? { traceId: randomHex(16), spanId: randomHex(8), sampled: true }
    : { traceId: parent.traceId, spanId: randomHex(8), sampled: parent.sampled };
}

/** The log fields of a request: its id and its trace's id, on every line written for it. */
export interface RequestLogFields {
  request_id?: string;
  trace_id?: string;
}

// ---- OpenTelemetry, only when spans are exported -------------------------------------------

let sdk: typeof Sdk | undefined;

/** Whether OTEL_EXPORTER_OTLP_ENDPOINT asked for spans (read once, at load). */
const TRACING_ENABLED = (process.env.OTEL_EXPORTER_OTLP_ENDPOINT ?? '') !== '';

if (TRACING_ENABLED) {
  // At import of @keyway/runtime (main.ts imports it before the app's modules): the pg
  // instrumentation must be in place before `pg` is first required. Unset, the SDK is never loaded.
  sdk = require('./tracing-sdk') as typeof Sdk;
}

/** Starts exporting spans when OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise does nothing. */
export function startTracing(service: string): void {
  sdk?.start(service);
}

/** The OpenTelemetry module when tracing is on (the hot path tests `undefined`, nothing else). */
export function otel(): typeof Sdk | undefined {
  return sdk;
}
