import { collectDefaultMetrics, Counter, Gauge, Histogram, register, type Metric } from 'prom-client';

/**
 * Prometheus metrics, one registry per process (prom-client's default, which @keyway/messaging
 * and @keyway/outbox write to as well: one prom-client version in the lockfile keeps it one).
 * Names and labels follow the contract in DESIGN "Operations": label values are bounded (route
 * templates, codes, windows, subjects from the Rpc table, dependency names), never a key id, a
 * tenant id or a raw path. Every series carries `service=<name>` as a default label.
 */

/** Seconds: from a cache-hit whoami (well under a millisecond) to the 5 s RPC timeout. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

let initialised: string | undefined;

/**
 * The process defaults (process_*, nodejs_*, nodejs_eventloop_lag_seconds) and the `service`
 * label on every series. Once per process: a second call (two apps in one test process) keeps
 * the first service's label.
 */
export function initMetrics(service: string): void {
  if (initialised !== undefined) return;
  initialised = service;
  register.setDefaultLabels({ service });
  collectDefaultMetrics({ eventLoopMonitoringPrecision: 20 });
}

/** The text exposition and its content type, for a GET /metrics. */
async function metricsText(): Promise<{ contentType: string; body: string }> {
  return { contentType: register.contentType, body: await register.metrics() };
}

/**
 * GET /metrics on a Fastify instance (a service's health server, the gateway's admin listener).
 * Structural type: @keyway/runtime does not depend on fastify's types beyond what Nest brings.
 */
interface MetricsRouteHost {
  get(path: string, handler: (req: unknown, reply: MetricsReply) => Promise<unknown>): unknown;
}
interface MetricsReply {
  header(name: string, value: string): MetricsReply;
  send(body: string): unknown;
}
export function registerMetricsRoute(host: MetricsRouteHost): void {
  host.get('/metrics', async (_req, reply) => {
    const { contentType, body } = await metricsText();
    return reply.header('content-type', contentType).header('cache-control', 'no-store').send(body);
  });
}

// A metric is created once per process and shared: the second module asking for a name (a test
// that builds two gateways, source and dist both loaded) gets the first one.
function once<T>(name: string, make: () => T): T {
  return (register.getSingleMetric(name) as T | undefined) ?? make();
}

export function counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
  return once(name, () => new Counter<L>({ name, help, labelNames }));
}

export function gauge<L extends string>(
  name: string,
  help: string,
  labelNames: readonly L[] = [],
  collect?: (this: Gauge<L>) => void | Promise<void>,
): Gauge<L> {
  return once(name, () => new Gauge<L>({ name, help, labelNames, ...(collect && { collect }) }));
}

export function histogram<L extends string>(name: string, help: string, labelNames: readonly L[] = [], buckets = LATENCY_BUCKETS): Histogram<L> {
  return once(name, () => new Histogram<L>({ name, help, labelNames, buckets }));
}

/** A bounded wait for a probe at scrape time: a hung dependency must not hang the scrape. */
const within = (p: Promise<unknown>, ms: number): Promise<boolean> =>
  new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    t.unref();
    p.then(
      () => (clearTimeout(t), resolve(true)),
      () => (clearTimeout(t), resolve(false)),
    );
  });

const probes = new Map<string, () => Promise<unknown>>();

/**
 * `keyway_dependency_up{dependency}`: 1 while the named probe answers, 0 when it fails or takes
 * over a second, measured when Prometheus scrapes (the probes are the readiness checks').
 */
export function watchDependencies<P extends Record<string, () => Promise<unknown>>>(named: P): P {
  for (const [name, probe] of Object.entries(named)) probes.set(name, probe);
  gauge('keyway_dependency_up', 'Whether a dependency answers its probe (1) or not (0), measured at scrape', ['dependency'], async function collect() {
    const entries = [...probes];
    const up = await Promise.all(entries.map(([, probe]) => within(Promise.resolve().then(probe), 1_000)));
    entries.forEach(([name], i) => this.labels(name).set(up[i] ? 1 : 0));
  });
  return named;
}

// ---- Hot-path metrics ------------------------------------------------------------------------
//
// prom-client's `labels(...).inc()` hashes the label set into a string on every call, even on a
// child it handed out before. On the gateway's cached whoami (tens of µs a request) that is a
// visible share, so the per-request series are plain objects resolved once per label set (a
// route, a subject) and bumped with `+= 1`; the registry reads them at scrape time.

type Labels = Record<string, string>;
interface SampleValue {
  labels: Labels;
  value: number;
  metricName?: string;
}
interface Exposed {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: SampleValue[];
  aggregator: 'sum';
}

export interface CounterSeries {
  /** `series.n += 1` on the hot path. */
  n: number;
}

/** A counter whose series are held by the caller: `series(labels)` once, then `s.n += 1`. */
class FastCounter {
  private readonly all = new Map<string, { labels: Labels; s: CounterSeries }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  series(labels: Labels): CounterSeries {
    const k = JSON.stringify(labels);
    let e = this.all.get(k);
    if (e === undefined) {
      e = { labels, s: { n: 0 } };
      this.all.set(k, e);
    }
    return e.s;
  }

  get(): Promise<Exposed> {
    const values = [...this.all.values()].map((e) => ({ labels: e.labels, value: e.s.n }));
    return Promise.resolve({ name: this.name, help: this.help, type: 'counter', values, aggregator: 'sum' });
  }
}

export class HistogramSeries {
  /** Per bucket (not cumulative); the last is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.counts[i]! += 1;
    this.sum += value;
    this.count += 1;
  }
}

/** A histogram whose series are held by the caller: `series(labels)` once, then `s.observe(seconds)`. */
class FastHistogram {
  private readonly all = new Map<string, { labels: Labels; s: HistogramSeries }>();
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[] = LATENCY_BUCKETS,
  ) {}

  series(labels: Labels): HistogramSeries {
    const k = JSON.stringify(labels);
    let e = this.all.get(k);
    if (e === undefined) {
      e = { labels, s: new HistogramSeries(this.bounds) };
      this.all.set(k, e);
    }
    return e.s;
  }

  get(): Promise<Exposed> {
    const values: SampleValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const { labels, s } of this.all.values()) {
      // A route nobody called yet is not worth its 17 lines a scrape.
      if (s.count === 0) continue;
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += s.counts[i]!;
        values.push({ labels: { ...labels, le: String(le) }, value: acc, metricName: bucket });
      });
      values.push({ labels: { ...labels, le: '+Inf' }, value: s.count, metricName: bucket });
      values.push({ labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels, value: s.count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' });
  }
}

export function fastCounter(name: string, help: string): FastCounter {
  return once(name, () => {
    const c = new FastCounter(name, help);
    register.registerMetric(c as unknown as Metric);
    return c;
  });
}

export function fastHistogram(name: string, help: string, buckets: readonly number[] = LATENCY_BUCKETS): FastHistogram {
  return once(name, () => {
    const h = new FastHistogram(name, help, buckets);
    register.registerMetric(h as unknown as Metric);
    return h;
  });
}

/** `keyway_rpc_duration_seconds{subject}` and `keyway_rpc_timeouts_total{subject}` (gateway → services, journeys → contacts). */
export interface RpcSeries {
  duration: HistogramSeries;
  timeouts: CounterSeries;
}
const rpcSeries = new Map<string, RpcSeries>();
export function rpcMetrics(subject: string): RpcSeries {
  let s = rpcSeries.get(subject);
  if (s === undefined) {
    s = {
      duration: fastHistogram('keyway_rpc_duration_seconds', 'Time from sending an RPC request to its answer, by subject').series({ subject }),
      timeouts: fastCounter('keyway_rpc_timeouts_total', 'RPC requests that got no answer in time, by subject').series({ subject }),
    };
    rpcSeries.set(subject, s);
  }
  return s;
}
