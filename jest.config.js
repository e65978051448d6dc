/**
 * One jest config for the monorepo. Nest 12 and the NATS v3 client ship ES modules, so swc
 * transforms them too (they are let through transformIgnorePatterns). Workspace packages resolve
 * to their sources, so tests never need a build of the packages.
 */
const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2023',
      keepClassNames: true,
    },
    module: { type: 'commonjs' },
  },
];
const esm = ['@nestjs', 'openapi-typescript', 'parse-json', 'index-to-position', 'supports-color', 'change-case', '@nats-io', 'cookie', '@fastify/cookie', 'uid', 'load-esm', 'file-type', 'strtok3', 'token-types', 'peek-readable', '@tokenizer', 'uint8array-extras', 'content-disposition'];

module.exports = {
  testEnvironment: 'node',
  rootDir: __dirname,
  roots: ['<rootDir>/apps', '<rootDir>/packages', '<rootDir>/test'],
  testMatch: ['**/*.spec.ts', '**/*.int-spec.ts', '**/test/e2e/**/*.e2e.ts'],
  transform: { '^.+\\.(t|j|mj)s$': swc },
  transformIgnorePatterns: [`/node_modules/(?!(${esm.join('|')})/)`],
  moduleNameMapper: {
    '^@keyway/(contracts|database|messaging|outbox|runtime|sdk|service|testing)$': '<rootDir>/packages/$1/src/index.ts',
  },
  moduleFileExtensions: ['ts', 'js', 'mjs', 'json'],
  globalSetup: '<rootDir>/packages/testing/src/global-setup.ts',
  globalTeardown: '<rootDir>/packages/testing/src/global-teardown.ts',
  testTimeout: 60_000,
  maxWorkers: 2,
};
