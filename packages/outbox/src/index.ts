export * from './outbox-relay';
export * from './outbox-table';
export { relayMetrics } from './relay-metrics';
