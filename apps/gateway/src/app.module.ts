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
        NatsModule.forRoot(config.NATS_URL, `${SERVICE}-${config.GATEWAY_ID}`),
        CoreModule.forRoot(config),
        HealthModule.forChecks({
          inject: [NATS_CONNECTION, GatewayCore],
          useFactory: (nc: NatsConnection, core: GatewayCore) => ({
            nats: () => nc.flush(),
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
