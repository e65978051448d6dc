#!/usr/bin/env node
/**
 * `npm run sdk:generate`: regenerates packages/sdk's checked-in document and types from the
 * gateway's OpenAPI document, built in this process from the gateway's build (no server: the
 * document is a pure function of the contracts' route table). Builds the gateway first, so a
 * contract changed a moment ago is in. test/foundation/sdk-drift.int-spec.ts fails, naming this
 * command, when packages/sdk is behind the gateway.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sdkFiles } from './lib/sdk-types.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
execFileSync('npx', ['turbo', 'run', 'build', '--filter=@keyway/gateway', '--output-logs=errors-only'], {
  cwd: ROOT,
  stdio: 'inherit',
  env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' },
});
const require = createRequire(import.meta.url);
const { buildOpenApiDocument } = require('../apps/gateway/dist/openapi/document.js');

const files = await sdkFiles(buildOpenApiDocument());
for (const [path, content] of files) {
  mkdirSync(dirname(join(ROOT, path)), { recursive: true });
  writeFileSync(join(ROOT, path), content);
}
process.stdout.write(`wrote ${[...files.keys()].join(', ')}\n`);
