import { jetStreamContext, awaitStream, type JetStreamContext } from '@keyway/messaging';
import { InjectNats } from '@keyway/runtime';
import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import type { NatsConnection } from '@nats-io/transport-node';
import { JOURNEYS_CONFIG, type JourneysConfig } from '../config';

/** The service that creates and configures KEYWAY_DOMAIN (STREAMS.domain.owner); journeys only waits for it. */
const STREAM_OWNER = 'contacts';

/**
 * The domain events stream, once its owner has created it. Waited for in the background, never
 * at boot: journeys answers its requests (and fills its outbox) whether or not contacts is up yet,
 * and its relay and consumer start as soon as the stream is there.
 */
@Injectable()
export class DomainStream implements OnApplicationShutdown {
  private readonly logger = new Logger('DomainStream');
  private waiting: Promise<JetStreamContext | undefined> | undefined;
  private stopping = false;

  constructor(
    @InjectNats() private readonly nc: NatsConnection,
    @Inject(JOURNEYS_CONFIG) private readonly config: JourneysConfig,
  ) {}

  get name(): string {
    return this.config.DOMAIN_STREAM;
  }

  /** Resolves once the stream exists; undefined if the service stopped first. */
  ready(): Promise<JetStreamContext | undefined> {
    return (this.waiting ??= this.wait());
  }

  onApplicationShutdown(): void {
    this.stopping = true;
  }

  /**
   * Short waits in a loop, so a shutdown is never held up by a long one; a warning naming the
   * owner each DOMAIN_STREAM_WAIT_MS while the stream is missing.
   */
  private async wait(): Promise<JetStreamContext | undefined> {
    const ctx = await jetStreamContext(this.nc);
    let warnAt = Date.now() + this.config.DOMAIN_STREAM_WAIT_MS;
    while (!this.stopping && !this.nc.isClosed()) {
      try {
        await awaitStream(ctx.jsm, { name: this.config.DOMAIN_STREAM, owner: STREAM_OWNER, timeoutMs: 1_000, pollMs: 100 });
        return ctx;
      } catch (err) {
        if (Date.now() >= warnAt) {
          this.logger.warn(`${err instanceof Error ? err.message : String(err)}; journeys events wait in the outbox`);
          warnAt = Date.now() + this.config.DOMAIN_STREAM_WAIT_MS;
        }
      }
    }
    return undefined;
  }
}
