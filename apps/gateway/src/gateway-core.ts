import { NATS_CONNECTION } from '@keyway/runtime';
import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { NatsConnection } from '@nats-io/transport-node';
import { InvalidationListener } from './auth/invalidation.listener';
import { KeyVerifier } from './auth/key-verifier';
import { VerificationCache } from './auth/verification-cache';
import type { GatewayConfig } from './config';
import { NatsLiveness } from './nats/liveness';
import { RpcClient } from './nats/rpc-client';
import { RateLimiter } from './rate-limit';
import { UsageRecorder } from './usage/usage-recorder';

export const GATEWAY_CONFIG = Symbol('GATEWAY_CONFIG');

/**
 * The gateway's moving parts, wired once: NATS request-reply, the verification cache with its
 * liveness guard and invalidation listener, and the rate limiter. Plain classes underneath, so
 * the HTTP edge (registered straight on Fastify) and the tests use them without Nest's DI.
 */
@Injectable()
export class GatewayCore implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('gateway');
  readonly rpc: RpcClient;
  readonly cache: VerificationCache;
  readonly liveness: NatsLiveness;
  readonly verifier: KeyVerifier;
  readonly invalidations: InvalidationListener;
  readonly limiter: RateLimiter;
  readonly usage: UsageRecorder;

  constructor(
    @Inject(GATEWAY_CONFIG) readonly config: GatewayConfig,
    @Inject(NATS_CONNECTION) readonly nc: NatsConnection,
  ) {
    this.rpc = new RpcClient(nc, config.GATEWAY_ID, config.RPC_TIMEOUT_MS);
    this.cache = new VerificationCache(config.CACHE_TTL_MS, config.NEGATIVE_CACHE_TTL_MS, config.CACHE_MAX_ENTRIES);
    this.liveness = new NatsLiveness(nc, config.NATS_STALE_AFTER_MS, () => this.verifier.clear());
    this.verifier = new KeyVerifier(this.cache, this.rpc, this.liveness);
    this.invalidations = new InvalidationListener(nc, this.verifier, config.GATEWAY_ID, config.HEARTBEAT_INTERVAL_MS);
    this.usage = new UsageRecorder(nc, config.GATEWAY_ID, config.USAGE_FLUSH_MS, (err) =>
      this.logger.warn(`usage publish failed, retried next interval: ${err.message}`),
    );
    this.limiter = new RateLimiter({
      ...(config.REDIS_URL ? { redisUrl: config.REDIS_URL } : {}),
      keyPrefix: `${config.REDIS_PREFIX}rl:`,
      commandTimeoutMs: config.RATE_LIMIT_REDIS_TIMEOUT_MS,
      logger: this.logger,
    });
  }

  async onModuleInit(): Promise<void> {
    this.liveness.start();
    this.usage.start();
    await this.invalidations.start();
    if (this.config.REDIS_URL) await this.limiter.ready(2_000);
  }

  async onApplicationShutdown(): Promise<void> {
    this.rpc.close();
    this.invalidations.stop();
    this.liveness.stop();
    await this.usage.stop();
    await this.limiter.close();
  }
}
