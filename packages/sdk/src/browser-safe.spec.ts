import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The SDK runs in the dashboard (a browser, under a strict CSP) as well as in Node: its code may
 * use fetch, Headers, Request, Response, AbortSignal and Web Crypto, which both have, and nothing
 * of Node's. Its only run-time import is openapi-fetch (itself fetch-only); contracts are read for
 * types alone (erased at build), since their index reaches node:crypto.
 */
const SRC = __dirname;
const sources = readdirSync(SRC, { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.spec.ts'));

describe('@keyway/sdk is browser-safe', () => {
  it.each(sources)('%s imports only openapi-fetch and its own files at run time', (file) => {
    const text = readFileSync(join(SRC, file), 'utf8');
    const runtimeImports = [...text.matchAll(/^\s*(?:import|export)\s+(?!type\b)(?:[^'"]*?\sfrom\s+)?['"]([^'"]+)['"]/gm)]
      .map((m) => m[1]!)
      // `import { type A, type B } from …` is erased too.
      .filter((spec) => !new RegExp(`import\\s*\\{\\s*(?:type\\s+\\w+\\s*,?\\s*)+\\}\\s*from\\s*['"]${spec.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}['"]`).test(text));
    expect(runtimeImports.filter((spec) => !spec.startsWith('./') && spec !== 'openapi-fetch')).toEqual([]);
    expect(text).not.toMatch(/\b(?:require\(|process\.|Buffer\b|__dirname|node:)/);
  });

  it('finds the files it checks, and would catch a Node import', () => {
    expect(sources).toEqual(expect.arrayContaining(['client.ts', 'errors.ts', 'transport.ts', 'index.ts']));
    const bad = "import { createHash } from 'node:crypto';";
    expect(/^\s*(?:import|export)\s+(?!type\b)(?:[^'"]*?\sfrom\s+)?['"]([^'"]+)['"]/m.exec(bad)?.[1]).toBe('node:crypto');
  });
});
