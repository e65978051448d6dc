export * from './eventually';
export * from './infra';
export * from './nats-server';
export * from './ports';
export * from './processes';
export * from './rpc-service';
export * from './tls';
