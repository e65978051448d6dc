#!/usr/bin/env node
/**
 * `npm run docs:events`: regenerates the published key-event contract (docs/events/*.json, the
 * AsyncAPI document, the generated sections of docs/events.md) from packages/contracts (and the
 * dead-letter headers of packages/messaging). The npm script builds both first; this reads their
 * builds. test/foundation/events-docs.int-spec.ts
 * fails when what is checked in differs from what this writes.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EVENTS_DIR, EVENTS_MD, eventDocs } from './lib/events-docs.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
// CommonJS both, so the contracts' schemas and the zod that converts them are one instance.
const require = createRequire(import.meta.url);
const contracts = require('../packages/contracts/dist/index.js');
const { DEAD_LETTER_HEADERS } = require('../packages/messaging/dist/index.js');
const { z } = require('zod');

mkdirSync(join(ROOT, EVENTS_DIR), { recursive: true });
const files = eventDocs({ contracts, z, markdown: readFileSync(join(ROOT, EVENTS_MD), 'utf8'), deadLetterHeaders: DEAD_LETTER_HEADERS });
for (const [path, content] of files) writeFileSync(join(ROOT, path), content);
process.stdout.write(`wrote ${[...files.keys()].join(', ')}\n`);
