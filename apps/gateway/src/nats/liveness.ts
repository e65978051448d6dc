import type { NatsConnection } from '@nats-io/transport-node';

/**
 * How much the gateway may trust what NATS told it. Invalidations arrive over NATS, so a cached
 * record is only as fresh as the connection: once NATS has been silent for `staleAfterMs`, cached
 * records are not used. "Silent" is measured by PING/PONG round trips, not by socket events,
 * so a half-open connection (no FIN, nothing delivered) is caught as well as a crash.
 * When the connection comes back, the `onRecovered` listeners run (the gateway clears its cache:
 * invalidations sent meanwhile were missed).
 */
export class NatsLiveness {
  private lastAliveAt = Date.now();
  private connected = true;
  private probing = false;
  private timer: NodeJS.Timeout | undefined;
  private wasStale = false;
  private readonly recovered: Array<() => void> = [];

  constructor(
    private readonly nc: NatsConnection,
    private readonly staleAfterMs: number,
  ) {}

  /** Runs `listener` each time NATS answers again after a silence or a reconnect. */
  onRecovered(listener: () => void): void {
    this.recovered.push(listener);
  }

  start(): void {
    const every = Math.max(20, Math.min(250, Math.floor(this.staleAfterMs / 4)));
    this.timer = setInterval(() => this.probe(), every);
    this.timer.unref();
    void this.watchStatus();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Cached records may be used. */
  trusted(now = Date.now()): boolean {
    return now - this.lastAliveAt <= this.staleAfterMs;
  }

  /** The client holds a live socket (requests may still get an answer). */
  isConnected(): boolean {
    return this.connected && !this.nc.isClosed();
  }

  private probe(): void {
    if (this.probing || !this.connected || this.nc.isClosed()) {
      this.noteStale();
      return;
    }
    this.probing = true;
    this.nc
      .flush()
      .then(() => this.alive())
      .catch(() => undefined)
      .finally(() => {
        this.probing = false;
      });
    this.noteStale();
  }

  private noteStale(): void {
    if (!this.trusted()) this.wasStale = true;
  }

  private alive(): void {
    this.lastAliveAt = Date.now();
    if (this.wasStale) {
      this.wasStale = false;
      this.notifyRecovered();
    }
  }

  private notifyRecovered(): void {
    for (const listener of this.recovered) listener();
  }

  private async watchStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect') {
        // Not distrusted yet: a blip shorter than staleAfterMs keeps serving from the cache.
        this.connected = false;
        this.wasStale = true;
      } else if (s.type === 'reconnect') {
        this.connected = true;
        // Any invalidation published while we were away is lost: start from an empty cache.
        this.wasStale = false;
        this.notifyRecovered();
        this.lastAliveAt = Date.now();
      }
    }
  }
}
