import { GATEWAY_HEARTBEAT, GATEWAY_INVALIDATE, GatewayHeartbeat, InvalidationAck, type Invalidation } from '@keyway/contracts';
import { counter, histogram, InjectNats } from '@keyway/runtime';
import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { IDENTITY_CONFIG, type IdentityConfig } from '../config';
import { Inject } from '@nestjs/common';

const invalidationWait = () => histogram('keyway_invalidation_wait_seconds', 'From a revocation to every live gateway acknowledging it (or INVALIDATION_WAIT_MS)');
const invalidationTimeouts = () => counter('keyway_invalidation_timeouts_total', 'Invalidations some live gateway did not acknowledge in time');

/**
 * Revocation, disabling and rotation must hold from the next request on, at every gateway. So
 * identity answers such a command only after every live gateway has dropped the key from its
 * cache (acknowledged on GATEWAY_INVALIDATE), or after a bounded wait. A gateway that misses
 * heartbeats for longer than it is trusted is dropped from the set; a gateway cut off from NATS
 * stops trusting its cache after its own, shorter bound, so it cannot serve the stale key either.
 */
@Injectable()
export class GatewayInvalidation implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(GatewayInvalidation.name);
  private readonly seen = new Map<string, number>();
  private sub: Subscription | undefined;

  constructor(
    @InjectNats() private readonly nc: NatsConnection,
    @Inject(IDENTITY_CONFIG) private readonly config: IdentityConfig,
  ) {}

  onModuleInit(): void {
    this.sub = this.nc.subscribe(GATEWAY_HEARTBEAT, {
      callback: (err, msg) => {
        if (err) return;
        const hb = GatewayHeartbeat.safeParse(safeJson(msg.data));
        if (hb.success) this.seen.set(hb.data.gateway_id, Date.now());
      },
    });
  }

  onApplicationShutdown(): void {
    this.sub?.unsubscribe();
  }

  liveGateways(): string[] {
    const cutoff = Date.now() - this.config.GATEWAY_LIVENESS_MS;
    for (const [id, at] of this.seen) if (at < cutoff) this.seen.delete(id);
    return [...this.seen.keys()];
  }

  /** Resolves when every live gateway has acknowledged, or after INVALIDATION_WAIT_MS. */
  async invalidate(message: Invalidation): Promise<{ acked: number; expected: number }> {
    const started = performance.now();
    const r = await this.invalidateEverywhere(message);
    // keyway_invalidation_wait_seconds: revoke → every live gateway acked (or the wait ran out).
    invalidationWait().observe((performance.now() - started) / 1000);
    if (r.acked < r.expected) invalidationTimeouts().inc();
    return r;
  }

  private async invalidateEverywhere(message: Invalidation): Promise<{ acked: number; expected: number }> {
    const live = new Set(this.liveGateways());
    const payload = JSON.stringify(message);
    if (live.size === 0) {
      // Nobody to wait for; still publish for gateways that started a moment ago.
      this.nc.publish(GATEWAY_INVALIDATE, payload);
      return { acked: 0, expected: 0 };
    }
    const acked = new Set<string>();
    try {
      const replies = await this.nc.requestMany(GATEWAY_INVALIDATE, payload, {
        strategy: 'count',
        maxMessages: live.size,
        maxWait: this.config.INVALIDATION_WAIT_MS,
      });
      for await (const reply of replies) {
        const ack = InvalidationAck.safeParse(safeJson(reply.data));
        if (ack.success) acked.add(ack.data.gateway_id);
        if ([...live].every((id) => acked.has(id))) break;
      }
    } catch (err) {
      this.logger.warn(`invalidation of ${message.key_id} failed: ${(err as Error).message}`);
    }
    const missing = [...live].filter((id) => !acked.has(id));
    if (missing.length > 0) this.logger.warn(`gateways ${missing.join(', ')} did not acknowledge invalidation of ${message.key_id} in time`);
    return { acked: acked.size, expected: live.size };
  }
}

function safeJson(data: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(data).toString('utf8'));
  } catch {
    return undefined;
  }
}
