/**
 * Two builds of src/: CommonJS (dist/cjs: Node's require, the CLI, the benches) and ES modules
 * (dist/esm: bundlers and browsers, e.g. the dashboard under Vite; Node's import). The ESM build
 * spells out each relative import's `.js` (Node's ESM resolver wants the file name) and says
 * `"type": "module"` for its folder.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const swc = (out, type, extra = []) =>
  execFileSync(
    'npx',
    ['swc', 'src', '-d', out, '--strip-leading-paths', '--config-file', '../../.swcrc', '-C', `module.type=${type}`, ...extra, '--ignore', '**/*.spec.ts,**/*.int-spec.ts'],
    { stdio: 'inherit' },
  );

rmSync('dist', { recursive: true, force: true });
swc('dist/cjs', 'commonjs');
swc('dist/esm', 'es6');
// swc leaves `from './client'` as written; Node's ESM loader needs `./client.js`.
for (const entry of readdirSync('dist/esm', { recursive: true })) {
  const file = join('dist/esm', String(entry));
  if (!file.endsWith('.js')) continue;
  writeFileSync(file, readFileSync(file, 'utf8').replace(/(from\s+['"])(\.{1,2}\/[^'"]+?)(?<!\.js)(['"])/g, '$1$2.js$3'));
}
writeFileSync('dist/esm/package.json', '{ "type": "module" }\n');
