export * from './config';
export * from './health';
export * from './logger';
export * from './nats.module';
export * from './rpc';
export * from './service';
export * from './turn-queue';
export * from './nats-options';
