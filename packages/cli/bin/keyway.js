#!/usr/bin/env node
// `keyway`, the operator CLI: `npm exec --no-install keyway -- --help`. The code is the build of
// src/ (dist/); this file stays put so npm can link the bin before anything is built.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const entry = join(__dirname, '..', 'dist', 'main.js');
if (!existsSync(entry)) {
  process.stderr.write('keyway: not built yet: run `npx turbo run build --filter=@keyway/cli` (or `npm run build`) first.\n');
  process.exit(1);
}
require(entry);
