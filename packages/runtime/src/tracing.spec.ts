import { continueTrace, formatTraceparent, parseTraceparent } from './tracing';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

describe('traceparent (W3C Trace Context)', () => {
  it('takes a valid header, sampled or not', () => {
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-01`)).toEqual({ traceId: TRACE, spanId: SPAN, sampled: true });
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-00`)).toEqual({ traceId: TRACE, spanId: SPAN, sampled: false });
    // A later version may append fields; its first four parts are read.
    expect(parseTraceparent(`01-${TRACE}-${SPAN}-01-what-comes-next`)).toEqual({ traceId: TRACE, spanId: SPAN, sampled: true });
  });

  it.each([
    ['not a string', ['00', TRACE]],
    ['empty', ''],
    ['uppercase hex', `00-${TRACE.toUpperCase()}-${SPAN}-01`],
    ['version ff', `ff-${TRACE}-${SPAN}-01`],
    ['version 00 with more after the flags', `00-${TRACE}-${SPAN}-01-x`],
    ['all-zero trace id', `00-${'0'.repeat(32)}-${SPAN}-01`],
    ['all-zero span id', `00-${TRACE}-${'0'.repeat(16)}-01`],
    ['short trace id', `00-${TRACE.slice(1)}-${SPAN}-01`],
    ['two headers joined', `00-${TRACE}-${SPAN}-01, 00-${TRACE}-${SPAN}-01`],
    ['huge', `01-${TRACE}-${SPAN}-01-${'a'.repeat(10_000)}`],
    ['a log-injection attempt', `00-${TRACE}-${SPAN}-01\n{"level":60}`],
  ])('refuses %s', (_why, value) => {
    expect(parseTraceparent(value)).toBeUndefined();
  });

  it('continues the caller: same trace and flags, a new span of its own', () => {
    const parent = parseTraceparent(`00-${TRACE}-${SPAN}-00`)!;
    const hop = continueTrace(parent);
    expect(hop.traceId).toBe(TRACE);
    expect(hop.sampled).toBe(false);
    expect(hop.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(hop.spanId).not.toBe(SPAN);
    expect(parseTraceparent(formatTraceparent(hop))).toEqual(hop);
  });

  it('starts a new trace: valid, sampled, and different every time (across pool refills)', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1_000; i++) {
      const t = continueTrace(undefined);
      expect(parseTraceparent(formatTraceparent(t))).toEqual(t);
      seen.add(t.traceId);
    }
    expect(seen.size).toBe(1_000);
  });
});
