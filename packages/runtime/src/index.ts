// First: with OTEL_EXPORTER_OTLP_ENDPOINT set, tracing.ts instruments pg before any app module loads it.
export * from './tracing';
export * from './config';
export * from './health';
export * from './logger';
export * from './metrics';
export * from './nats.module';
export * from './rpc';
export * from './service';
export { traceOf } from './tracing-rpc';
export * from './turn-queue';
export * from './nats-options';
