/**
 * @keyway/sdk: the typed client of Keyway's API (README.md). Browser-safe: fetch and Web Crypto
 * only. Everything here is the SDK's public face, used by customers' code as well as by this
 * repository's dashboard and CLI.
 */
export { createKeywayClient, isKeywayError, type KeywayClientOptions } from './client';
/** @public customers type their own variables with it */
export type { KeywayClient } from './client';
export { KeywayApiError } from './errors';
/** @public the API's types by path, operation and schema (`components['schemas']['KeyView']`), for customers' code */
export type { components, operations, paths } from './generated/openapi';
