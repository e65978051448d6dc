import { NATS_CONNECTION } from '@keyway/runtime';
import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { NatsConnection } from '@nats-io/transport-node';
import { InvalidationListener } from './auth/invalidation.listener';
import { KeyVerifier } from './auth/key-verifier';
import { SessionAuth } from './auth/session-auth';
import { VerificationCache } from './auth/verification-cache';
import type { GatewayConfig } from './config';
import { NatsLiveness } from './nats/liveness';
import { RpcClient } from './nats/rpc-client';
import { RateLimiter } from './rate-limit';
import { UsageRecorder } from './usage/usage-recorder';

export const GATEWAY_CONFIG = Symbol('GATEWAY_CONFIG');

/** What the request path uses (see http/request-path.ts). */
export interface Gateway {
  readonly config: GatewayConfig;
  readonly rpc: RpcClient;
  readonly verifier: KeyVerifier;
  readonly limiter: RateLimiter;
  readonly usage: UsageRecorder;
  readonly sessions: SessionAuth;
}

/**
 * The gateway's parts, plain classes wired by one function in dependency order, read top to
 * bottom. Why not a Nest provider each: the request path runs on Fastify outside Nest (a Nest
 * controller per route cost a measured share of the hot path), the tests use the classes without
 * DI, and seven tokens would add ceremony and no choice. Nest holds the lifecycle: this one
 * provider starts and stops the parts.
 */
export function wireGateway(config: GatewayConfig, nc: NatsConnection, logger: Logger) {
  const rpc = new RpcClient(nc, config.GATEWAY_ID, config.RPC_TIMEOUT_MS);
  const cache = new VerificationCache(config.CACHE_TTL_MS, config.NEGATIVE_CACHE_TTL_MS, config.CACHE_MAX_ENTRIES);
  const liveness = new NatsLiveness(nc, config.NATS_STALE_AFTER_MS);
  const verifier = new KeyVerifier(cache, rpc, liveness);
  const sessions = new SessionAuth(rpc, liveness, config.SESSION_CACHE_TTL_MS, config.NEGATIVE_CACHE_TTL_MS, config.CACHE_MAX_ENTRIES);
  // Invalidations sent while NATS was away were missed: the caches start over when it is back.
  liveness.onRecovered(() => {
    verifier.clear();
    sessions.clear();
  });
  const invalidations = new InvalidationListener(nc, verifier, config.GATEWAY_ID, config.HEARTBEAT_INTERVAL_MS, sessions);
  const usage = new UsageRecorder(nc, config.GATEWAY_ID, config.USAGE_FLUSH_MS, (err) => logger.warn(`usage publish failed, retried next interval: ${err.message}`));
  const limiter = new RateLimiter({
    ...(config.REDIS_URL ? { redisUrl: config.REDIS_URL } : {}),
    keyPrefix: `${config.REDIS_PREFIX}rl:`,
    commandTimeoutMs: config.RATE_LIMIT_REDIS_TIMEOUT_MS,
    logger,
  });
  return { config, rpc, verifier, limiter, usage, liveness, invalidations, sessions };
}

@Injectable()
export class GatewayCore implements Gateway, OnModuleInit, OnApplicationShutdown {
  private readonly parts: ReturnType<typeof wireGateway>;

  constructor(@Inject(GATEWAY_CONFIG) readonly config: GatewayConfig, @Inject(NATS_CONNECTION) nc: NatsConnection) {
    this.parts = wireGateway(config, nc, new Logger('gateway'));
  }

  get rpc(): RpcClient {
    return this.parts.rpc;
  }
  get verifier(): KeyVerifier {
    return this.parts.verifier;
  }
  get limiter(): RateLimiter {
    return this.parts.limiter;
  }
  get usage(): UsageRecorder {
    return this.parts.usage;
  }
  get sessions(): SessionAuth {
    return this.parts.sessions;
  }

  async onModuleInit(): Promise<void> {
    const { liveness, usage, invalidations, limiter } = this.parts;
    liveness.start();
    usage.start();
    await invalidations.start();
    if (this.config.REDIS_URL) await limiter.ready(2_000);
  }

  async onApplicationShutdown(): Promise<void> {
    const { rpc, invalidations, liveness, usage, limiter } = this.parts;
    rpc.close();
    invalidations.stop();
    liveness.stop();
    await usage.stop();
    await limiter.close();
  }
}
