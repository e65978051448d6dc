import { Global, Inject, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { natsConnectionOptions, type NatsAuthEnv } from './nats-options';

export const NATS_CONNECTION = Symbol('NATS_CONNECTION');
export const InjectNats = (): ParameterDecorator => Inject(NATS_CONNECTION);

/** The service's own NATS connection for JetStream and direct publishes; drained on shutdown. */
@Global()
@Module({})
export class NatsModule implements OnApplicationShutdown {
  constructor(@Inject(NATS_CONNECTION) private readonly nc: NatsConnection) {}

  /** `config`: the service's validated configuration (its NATS_URL and credentials, nats-options.ts). */
  static forRoot(config: NatsAuthEnv & { NATS_URL: string }, name: string): DynamicModule {
    return {
      module: NatsModule,
      providers: [
        {
          provide: NATS_CONNECTION,
          useFactory: () =>
            // noAsyncTraces: the client would otherwise capture a stack trace for every request
            // (about a tenth of the gateway's CPU on a proxied call); our errors carry codes instead.
            connect({ ...natsConnectionOptions(config, name), maxReconnectAttempts: -1, reconnectTimeWait: 250, noAsyncTraces: true }),
        },
      ],
      exports: [NATS_CONNECTION],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.drain().catch(() => this.nc.close());
  }
}
