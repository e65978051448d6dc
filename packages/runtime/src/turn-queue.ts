/**
 * Work held back to the end of the event loop's turn (its check phase, setImmediate) and then run
 * all together: the answers, requests or replies produced while one I/O phase's input was being
 * handled leave in a run of writes instead of one between each read. A write to a socket whose
 * reader sleeps costs a kernel wake-up; a run of writes pays it once (see the gateway's README).
 * One failing job does not keep the others from running: its error goes to `onError`.
 */
export class TurnQueue {
  private jobs: Array<() => void> = [];

  constructor(private readonly onError: (err: unknown) => void) {}

  push(job: () => void): void {
    if (this.jobs.push(job) === 1) setImmediate(this.run);
  }

  private readonly run = (): void => {
    const jobs = this.jobs;
    this.jobs = [];
    for (const job of jobs) {
      try {
        job();
      } catch (err) {
        this.onError(err);
      }
    }
  };
}
