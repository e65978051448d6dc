export * from './by-id-loader';
export * from './pg-errors';
export * from './service-database';
export * from './pagination';
export * from './idempotency';
export * from './roles';
