/**
 * Group commit: while one write is in flight, the writes that arrive wait and then go in together
 * as the next one. Under load one commit carries many, alone a write still takes one round trip.
 * If a batch fails, each of its items is written alone, so only the guilty one fails.
 */
export class GroupCommit<W, R> {
  private queue: Array<{ item: W; resolve: (r: R) => void; reject: (err: unknown) => void }> = [];
  private flushing = false;

  constructor(
    private readonly write: (batch: readonly W[]) => Promise<R>,
    private readonly maxBatch = 200,
  ) {}

  /** Resolves with what the write of the batch this item went in answered. */
  add(item: W): Promise<R> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        try {
          const r = await this.write(batch.map((p) => p.item));
          for (const p of batch) p.resolve(r);
        } catch (err) {
          if (batch.length === 1) {
            batch[0]!.reject(err);
            continue;
          }
          for (const p of batch) await this.write([p.item]).then(p.resolve, p.reject);
        }
      }
    } finally {
      this.flushing = false;
    }
  }
}
