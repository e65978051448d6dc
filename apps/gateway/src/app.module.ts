import { VerifyReply } from '@keyway/contracts';
import { HealthModule, loggerParams, NATS_CONNECTION, NatsModule } from '@keyway/runtime';
import { Global, Module, type DynamicModule } from '@nestjs/common';
import type { NatsConnection } from '@nats-io/transport-node';
import { LoggerModule } from 'nestjs-pino';
import { Rpc } from '@keyway/contracts';
import { SERVICE, type GatewayConfig } from './config';
import { GATEWAY_CONFIG, GatewayCore } from './gateway-core';

@Global()
@Module({})
class CoreModule {
  static forRoot(config: GatewayConfig): DynamicModule {
    return {
      module: CoreModule,
      providers: [{ provide: GATEWAY_CONFIG, useValue: config }, GatewayCore],
      exports: [GatewayCore, GATEWAY_CONFIG],
    };
  }
}

/**
 * Nest holds the gateway's lifecycle (NATS connection, logger, health, shutdown); the `/v1` and
 * `/admin/v1` edges are plain Fastify routes registered in `createGateway` (see app.ts).
 */
@Module({})
export class AppModule {
  static forRoot(config: GatewayConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        LoggerModule.forRoot(loggerParams(SERVICE, config.LOG_LEVEL)),
        NatsModule.forRoot(config, `${SERVICE}-${config.GATEWAY_ID}`),
        CoreModule.forRoot(config),
        HealthModule.forChecks({
          inject: [NATS_CONNECTION, GatewayCore],
          useFactory: (nc: NatsConnection, core: GatewayCore) => ({
            nats: () => nc.flush(),
            // Required when configured (DESIGN, Health): a replica that counts limits in its own
            // memory admits up to N times a shared limit, so it leaves the load balancer until
            // Redis answers, boot included (the soak caught a just-restarted gateway admitting on
            // per-replica limits before Redis had ever answered). The limiter itself keeps
            // falling back, so requests already routed to it are still limited, per replica.
            ...(core.config.REDIS_URL
              ? {
                  redis: async () => {
                    if (core.limiter.mode !== 'redis') throw new Error('rate limits are counted in per-replica memory: Redis does not answer');
                  },
                }
              : {}),
          }),
          // Reported, not required (DESIGN, Health): while identity is down a gateway keeps
          // serving cached keys (uncached ones get 503), so taking it out of the load balancer
          // would turn a partial outage into a whole one. The body still says identity is down.
          reported: (_nc: NatsConnection, core: GatewayCore) => ({
            // Identity answers a verify for an id no key has: `record: null` is a healthy answer.
            identity: async () => {
              const r = await core.rpc.call(Rpc.keysVerify, { lookup_id: '00000000' }, 1_500);
              if (!r.ok) throw new Error(`identity: ${r.error.code}`);
              VerifyReply.parse(r.response);
            },
          }),
        }),
      ],
    };
  }
}
