#!/usr/bin/env node
'use strict';
/**
 * The key checksum, three ways, on what the gateway runs for every request with a key: the CRC
 * alone, parsing a valid key (pattern, CRC, base62 checksum) and the whole local check (parse,
 * then the SHA-256 of the key compared with the stored digest; the cache look-up between them is
 * a Map get). `table`: the lookup table with a non-ASCII fallback, as contracts had it until
 * issue 9; `table, ASCII only`: the same without the fallback, what contracts keeps (key bodies
 * are ASCII); `zlib.crc32`: node:zlib's (Node ≥ 20.15). `contracts parseKey` is the real one.
 * Prints ns per operation, the variants taking turns round by round, and the median. Asserts
 * nothing.
 *
 *   npm run bench -- crc     (or node packages/contracts/bench/crc.js [--ops 1000000] [--rounds 5])
 */
const { crc32: zlibCrc32 } = require('node:zlib');
const { build, numberArg } = require('../../../bench/lib');

const OPS = numberArg('ops', 1_000_000);
const ROUNDS = numberArg('rounds', 5);

build(['contracts']);
const { KEY_PATTERN, hashKey, hashMatches, mintKey, parseKey } = require('@keyway/contracts');

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** The table as contracts had it: keys are ASCII, where a character is its UTF-8 byte. */
function tableCrc32(text) {
  let crc = 0xffffffff;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7f) throw new Error('not a key'); // contracts went through a Buffer here
    crc = CRC_TABLE[(crc ^ c) & 0xff] ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** The table without the non-ASCII check: right only for text already known to be ASCII. */
function asciiTableCrc32(text) {
  let crc = 0xffffffff;
  for (let i = 0; i < text.length; i++) crc = CRC_TABLE[(crc ^ text.charCodeAt(i)) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
function base62Fixed(value, width) {
  let out = '';
  let v = value;
  for (let i = 0; i < width; i++) {
    out = BASE62[v % 62] + out;
    v = Math.floor(v / 62);
  }
  return out;
}

// contracts' parseKey, once with each checksum. Two functions, not one taking the CRC as a
// parameter: a call site that sees both would be polymorphic and slow them both down.
function parseTable(key) {
  const m = KEY_PATTERN.exec(key);
  if (!m || base62Fixed(tableCrc32(key.slice(0, -6)), 6) !== m[4]) return null;
  return { environment: m[1], lookupId: m[2], prefix: `kw_${m[1]}_${m[2]}` };
}
function parseAsciiTable(key) {
  const m = KEY_PATTERN.exec(key);
  if (!m || base62Fixed(asciiTableCrc32(key.slice(0, -6)), 6) !== m[4]) return null;
  return { environment: m[1], lookupId: m[2], prefix: `kw_${m[1]}_${m[2]}` };
}
function parseZlib(key) {
  const m = KEY_PATTERN.exec(key);
  if (!m || base62Fixed(zlibCrc32(key.slice(0, -6)), 6) !== m[4]) return null;
  return { environment: m[1], lookupId: m[2], prefix: `kw_${m[1]}_${m[2]}` };
}

const keys = Array.from({ length: 1024 }, (_, i) => mintKey(i % 2 ? 'live' : 'test').key);
const digests = new Map(keys.map((k) => [k, hashKey(k)]));
const bodies = keys.map((k) => k.slice(0, -6));
for (const k of keys) {
  if (tableCrc32(k) !== zlibCrc32(k) || asciiTableCrc32(k) !== zlibCrc32(k)) throw new Error(`the two CRCs differ on ${k}`);
  for (const parse of [parseTable, parseAsciiTable, parseZlib]) if (parse(k)?.lookupId !== parseKey(k)?.lookupId) throw new Error(`a variant does not parse ${k}`);
}

const at = (list, i) => list[i & 1023];
const cases = {
  'CRC-32 of a key body (41 characters)': {
    table: (i) => tableCrc32(at(bodies, i)),
    'table, ASCII only': (i) => asciiTableCrc32(at(bodies, i)),
    'zlib.crc32': (i) => zlibCrc32(at(bodies, i)),
  },
  'parse a valid key': {
    table: (i) => parseTable(at(keys, i)),
    'table, ASCII only': (i) => parseAsciiTable(at(keys, i)),
    'zlib.crc32': (i) => parseZlib(at(keys, i)),
    'contracts parseKey': (i) => parseKey(at(keys, i)),
  },
  'whole check: parse + SHA-256 compare': {
    table: (i) => parseTable(at(keys, i)) !== null && hashMatches(at(keys, i), digests.get(at(keys, i))),
    'table, ASCII only': (i) => parseAsciiTable(at(keys, i)) !== null && hashMatches(at(keys, i), digests.get(at(keys, i))),
    'zlib.crc32': (i) => parseZlib(at(keys, i)) !== null && hashMatches(at(keys, i), digests.get(at(keys, i))),
  },
};

let sink = 0;
function nsPerOp(fn, ops) {
  const t = process.hrtime.bigint();
  for (let i = 0; i < ops; i++) if (fn(i)) sink++;
  return Number(process.hrtime.bigint() - t) / ops;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`Key checksum: ${OPS.toLocaleString('en')} operations per variant per round (a quarter for the whole check), ${ROUNDS} rounds, Node ${process.version}`);
for (const [name, variants] of Object.entries(cases)) {
  const ops = name.startsWith('whole') ? Math.ceil(OPS / 4) : OPS;
  const entries = Object.entries(variants);
  for (const [, fn] of entries) nsPerOp(fn, ops / 10); // warm-up: every variant optimised before timing
  const times = Object.fromEntries(entries.map(([v]) => [v, []]));
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 ? [...entries].reverse() : entries;
    for (const [v, fn] of order) times[v].push(nsPerOp(fn, ops));
  }
  console.log(`  ${name}`);
  for (const [v, ts] of Object.entries(times)) {
    console.log(`    ${v.padEnd(20)} median ${median(ts).toFixed(1).padStart(7)} ns/op   rounds: ${ts.map((t) => t.toFixed(1)).join(' ')}`);
  }
}
if (sink === -1) console.log(sink);
