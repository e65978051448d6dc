#!/usr/bin/env node
'use strict';
/**
 * `npm run bench [-- <name>...]`: runs benchmark scripts one after another (never two at once:
 * they measure a 2-core machine) and prints their output as it comes.
 *
 *  - no name: every `bench/*.js` except the shared `bench/lib.js`;
 *  - a name: `bench/<name>.js`, else the one `bench/<name>*.js` it starts (`keys` → keys-create),
 *    else an app's or a package's own `apps/<app>/bench/<file>.js` (`packages/<pkg>/bench/…`),
 *    named `<file>`, `<app>-<file>` or `<first word of app>-<file>` (`rate-limit`,
 *    `gateway-rate-limit`, `audit-ingest`, `contracts-crc`).
 * `npm run bench -- --list` prints every name. The exit code is 1 if any script failed.
 */
const { spawnSync } = require('node:child_process');
const { existsSync, readdirSync } = require('node:fs');
const { join, relative } = require('node:path');

const ROOT = join(__dirname, '..');
/** Helpers that live beside the benchmarks but are not benchmarks themselves. */
const NOT_BENCHES = new Set(['lib.js', 'load-ts.js']);

const jsFiles = (dir) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.js') && !NOT_BENCHES.has(f)).sort() : []);

/** Every benchmark with the names it answers to; `root` ones run by default. */
function catalogue() {
  const list = [];
  for (const f of jsFiles(join(ROOT, 'bench'))) {
    const base = f.slice(0, -3);
    list.push({ file: join(ROOT, 'bench', f), names: [base], root: true });
  }
  for (const dir of ['apps', 'packages']) {
    for (const app of existsSync(join(ROOT, dir)) ? readdirSync(join(ROOT, dir)).sort() : []) {
      for (const f of jsFiles(join(ROOT, dir, app, 'bench'))) {
        const base = f.slice(0, -3);
        const names = [...new Set([`${app}-${base}`, `${app.split('-')[0]}-${base}`, `${app}/${base}`, base])];
        list.push({ file: join(ROOT, dir, app, 'bench', f), names, root: false });
      }
    }
  }
  return list;
}

function resolveName(list, name) {
  const exact = list.filter((b) => b.names.includes(name));
  // A root benchmark wins over an app's file of the same base name.
  if (exact.length > 0) return exact.find((b) => b.root) ?? exact[0];
  const prefixed = list.filter((b) => b.names.some((n) => n.startsWith(name)));
  if (prefixed.length === 1) return prefixed[0];
  const known = list.map((b) => b.names[0]).join(', ');
  if (prefixed.length > 1) throw new Error(`"${name}" matches ${prefixed.map((b) => b.names[0]).join(', ')}: be more precise`);
  throw new Error(`no benchmark named "${name}" (known: ${known})`);
}

function main() {
  const args = process.argv.slice(2);
  const list = catalogue();
  if (args.includes('--list')) {
    for (const b of list) console.log(`${b.names.join(' | ').padEnd(60)} ${relative(ROOT, b.file)}${b.root ? '' : '   (by name only)'}`);
    return 0;
  }
  let chosen;
  try {
    chosen = args.length === 0 ? list.filter((b) => b.root) : [...new Set(args.map((a) => resolveName(list, a)))];
  } catch (err) {
    console.error(err.message);
    return 2;
  }
  const failed = [];
  for (const b of chosen) {
    const rel = relative(ROOT, b.file);
    console.log(`\n=== ${rel} ===`);
    const started = Date.now();
    const r = spawnSync(process.execPath, [b.file], { cwd: ROOT, stdio: 'inherit', env: process.env });
    const took = ((Date.now() - started) / 1000).toFixed(1);
    if (r.status !== 0) failed.push(rel);
    console.log(`=== ${rel}: ${r.status === 0 ? 'done' : `FAILED (${r.signal ?? `exit ${r.status}`})`} in ${took} s ===`);
  }
  if (failed.length > 0) console.error(`\nfailed: ${failed.join(', ')}`);
  return failed.length > 0 ? 1 : 0;
}

process.exitCode = main();
