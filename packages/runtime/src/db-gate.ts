import { Logger } from '@nestjs/common';
import type { INestApplicationContext } from '@nestjs/common';
import { readinessChecksOf } from './health';

/** The replica's place in its NATS queue group (RpcServer): left and joined again by the gate. */
export interface QueueMembership {
  leave(): void;
  join(): void;
}

export interface DbGateOptions {
  /** How often the database is asked. */
  everyMs?: number;
  /** A probe slower than this counts as a failure. */
  timeoutMs?: number;
  /** Failures in a row before the replica leaves (a pool busy for one probe is not an outage). */
  failuresToLeave?: number;
}

/**
 * A replica whose database does not answer keeps its place in the NATS queue group, so NATS keeps
 * handing it its share of the requests, and each one fails (or waits out the gateway's timeout)
 * while a healthy replica idles. Kubernetes' readiness probe cannot help: the bus does not go
 * through a Service. So the replica watches its own database (also under `npm start` and compose,
 * where nothing probes it), leaves the queue group while the database does not answer, and joins
 * again as soon as it does. /health/ready reports the same database check.
 */
export class DbGate {
  private readonly logger = new Logger('DbGate');
  private timer: NodeJS.Timeout | undefined;
  private probing = false;
  private failures = 0;
  private joined = true;
  private readonly everyMs: number;
  private readonly timeoutMs: number;
  private readonly failuresToLeave: number;

  constructor(
    private readonly probe: () => Promise<unknown>,
    private readonly membership: QueueMembership,
    opts: DbGateOptions = {},
  ) {
    this.everyMs = opts.everyMs ?? 1_000;
    this.timeoutMs = opts.timeoutMs ?? 2_000;
    this.failuresToLeave = Math.max(1, opts.failuresToLeave ?? 2);
  }

  /** In the queue group (the last probes answered, or not enough failed in a row yet). */
  get open(): boolean {
    return this.joined;
  }

  start(): this {
    this.timer ??= setInterval(() => void this.tick(), this.everyMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One probe; exposed so a caller (or a test) need not wait for the timer. */
  async tick(): Promise<void> {
    if (this.probing) return; // a probe still waiting counts once, when it ends
    this.probing = true;
    let error: unknown;
    try {
      await withTimeout(this.probe(), this.timeoutMs);
    } catch (err) {
      error = err;
    } finally {
      this.probing = false;
    }
    if (this.timer === undefined) return; // stopped meanwhile: the server is closing
    if (error === undefined) {
      this.failures = 0;
      if (!this.joined) {
        this.joined = true;
        this.membership.join();
        this.logger.log('the database answers again: back in the queue group');
      }
      return;
    }
    this.failures++;
    if (this.joined && this.failures >= this.failuresToLeave) {
      this.joined = false;
      this.membership.leave();
      this.logger.error(
        `the database does not answer (${error instanceof Error ? error.message : String(error)}): out of the queue group until it does, so the other replicas take the requests`,
      );
    }
  }
}

const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
    t.unref();
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(t);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });

/**
 * Gates `membership` on the app's `database` readiness check; an app without a database (no such
 * check) is not gated. The gate is started, and stopped by its owner on close.
 */
export function gateOnDatabase(app: INestApplicationContext, membership: QueueMembership, opts?: DbGateOptions): DbGate | undefined {
  const database = readinessChecksOf(app)?.database;
  return database ? new DbGate(database, membership, opts).start() : undefined;
}
