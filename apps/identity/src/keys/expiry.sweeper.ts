import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { IDENTITY_CONFIG, type IdentityConfig } from '../config';
import { KeysHandler } from './keys.handler';
import { KeysQueries } from './keys.queries';

/**
 * Records `expired` once for each key past its expires_at. Verification does not wait for this:
 * it refuses a key from expires_at on, whatever the events say. Several replicas may sweep at
 * once; the stream version makes the second `expire` a no-op.
 */
@Injectable()
export class ExpirySweeper implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(ExpirySweeper.name);
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly queries: KeysQueries,
    private readonly handler: KeysHandler,
    @Inject(IDENTITY_CONFIG) private readonly config: IdentityConfig,
  ) {}

  onModuleInit(): void {
    this.timer = setInterval(() => {
      this.running ??= this.sweep()
        .then(() => undefined)
        .catch((err: Error) => this.logger.warn(`expiry sweep failed: ${err.message}`))
        .finally(() => (this.running = undefined));
    }, this.config.EXPIRY_SWEEP_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  async sweep(): Promise<number> {
    let n = 0;
    for (const id of await this.queries.dueForExpiry(100)) n += (await this.handler.expire(id)).length;
    return n;
  }
}
