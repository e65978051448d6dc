export * from './service-modules';
