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
          useFactory: (nc: NatsConnection) => ({ nats: () => nc.flush() }),
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
            // Reported too: without Redis the limiter counts in per-replica memory (limits per
            // replica, not shared), which the body and the fallback metric say; refusing traffic
            // for it would be worse.
            ...(core.config.REDIS_URL
              ? {
                  redis: async () => {
                    if (core.limiter.mode !== 'redis') throw new Error('rate limits are counted in per-replica memory: Redis does not answer');
                  },
                }
              : {}),
          }),
        }),
      ],
    };
  }
}
