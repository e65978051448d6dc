import type { MinimalLogger } from '@keyway/messaging';
import { Client } from 'pg';

/** The session advisory lock the writing replica holds (any constant: the database is audit-log's own). */
const WRITER_LOCK = 7_361_005;

/**
 * One replica at a time writes the trail; the others stand by (and answer lists, verify and
 * usage). The chain is one sequence per stream: two writers interleave their batches message by
 * message, so most of each one's batches cannot be linked as they are stored and go the sealed
 * way (an insert, a read-back and an update per row). Measured on two replicas: a third of the
 * drain rate and a p99 publish → linked several times that of one replica.
 *
 * The lease is a session advisory lock on a connection of its own: a replica that dies (or loses
 * that connection) releases it, and a standby takes it within `pollMs`. Correctness never rests
 * on it: two writers at once (a lease lost and taken while the old holder still finishes a batch)
 * are what the cursor and the linker are built for; only the speed suffers.
 */
export class WriterLease {
  private client: Client | undefined;
  private held = false;
  private stopped = false;
  private wake: (() => void) | undefined;

  constructor(
    private readonly databaseUrl: string,
    private readonly pollMs: number,
    private readonly logger: MinimalLogger,
  ) {}

  get isHeld(): boolean {
    return this.held;
  }

  /**
   * Resolves true once this replica holds the lease (false if stopped first). `onLost` is called
   * once, should the lease's connection end while it is held.
   */
  async acquire(onLost: () => void): Promise<boolean> {
    while (!this.stopped) {
      try {
        const client = await this.connection();
        const r = await client.query<{ mine: boolean }>('SELECT pg_try_advisory_lock($1) AS mine', [WRITER_LOCK]);
        if (r.rows[0]?.mine) {
          this.held = true;
          const lost = (): void => {
            if (!this.held) return;
            this.held = false;
            this.client = undefined;
            onLost();
          };
          client.once('end', lost);
          client.once('error', lost);
          return true;
        }
      } catch (err) {
        this.logger.warn({ err }, 'could not ask for the audit writer lease; retrying');
        await this.drop();
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.pollMs);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return false;
  }

  /** Gives the lease up (its connection closes) and stops any wait for it. */
  async release(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.held = false;
    await this.drop();
  }

  private async connection(): Promise<Client> {
    if (this.client) return this.client;
    const client = new Client({ connectionString: this.databaseUrl, application_name: 'audit-log writer lease' });
    // Errors are seen through the queries (and, once held, as the lease lost).
    client.on('error', () => undefined);
    await client.connect();
    this.client = client;
    return client;
  }

  /** Closes the lease's connection (giving the lease up, if held) without stopping acquire(). */
  async drop(): Promise<void> {
    this.held = false;
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
  }
}
