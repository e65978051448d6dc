import { Counter, Gauge, Histogram, register, type Metric } from 'prom-client';

/** What the backlog gauge asks each live relay of this process when Prometheus scrapes. */
export interface BacklogSource {
  readonly outboxName: string;
  /** Rows past the checkpoint, or undefined when this replica is not the one relaying. */
  backlog(): Promise<number | undefined>;
}

const sources = new Set<BacklogSource>();

// One set per process (the default registry), shared by every relay in it and told apart by the
// `outbox` label (the relay's name). A second module instance (jest's per-file registry, or two
// copies of the package) finds the ones already registered instead of throwing.
function metric<T extends Metric>(name: string, make: () => T): T {
  return (register.getSingleMetric(name) as T | undefined) ?? make();
}

export const relayMetrics = {
  backlog: metric(
    'keyway_outbox_backlog',
    () =>
      new Gauge({
        name: 'keyway_outbox_backlog',
        help: 'Outbox rows committed but not yet acknowledged by JetStream (reported by the replica that relays)',
        labelNames: ['outbox'],
        async collect() {
          this.reset();
          for (const s of sources) {
            const n = await s.backlog().catch(() => undefined);
            if (n !== undefined) this.set({ outbox: s.outboxName }, n);
          }
        },
      }),
  ),
  lag: metric(
    'keyway_outbox_publish_lag_seconds',
    () =>
      new Histogram({
        name: 'keyway_outbox_publish_lag_seconds',
        help: "From an outbox row's write to JetStream's acknowledgement",
        labelNames: ['outbox'],
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      }),
  ),
  leader: metric(
    'keyway_outbox_leader',
    () => new Gauge({ name: 'keyway_outbox_leader', help: '1 while this replica holds the relay lock and relays', labelNames: ['outbox'] }),
  ),
  repaired: metric(
    'keyway_relay_repaired_events_total',
    () =>
      new Counter({
        name: 'keyway_relay_repaired_events_total',
        help: 'Events republished because the stream had lost them (fsync loss, restore from an old backup)',
        labelNames: ['outbox'],
      }),
  ),
  lossDetected: metric(
    'keyway_relay_loss_detected_total',
    () =>
      new Counter({
        name: 'keyway_relay_loss_detected_total',
        help: 'Times the relay found the stream missing events it had seen acknowledged',
        labelNames: ['outbox'],
      }),
  ),
  addSource(s: BacklogSource): void {
    sources.add(s);
  },
  removeSource(s: BacklogSource): void {
    sources.delete(s);
  },
};
