import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import Fastify, { type FastifyInstance } from 'fastify';
import { applyConventions } from './conventions';
import { DASHBOARD_CSP, registerDashboard } from './dashboard.routes';

/**
 * The dashboard's files as the gateway serves them, from a build laid out as Vite lays it out
 * (index.html, assets/<name>-<hash>.js|css) in a temporary folder, on a Fastify with the gateway's
 * conventions (request id, nosniff, the JSON-only parser) in front.
 */
describe('GET /dashboard/: the built app, its caching, its CSP and deep links', () => {
  let root: string;
  let app: FastifyInstance;
  const INDEX = '<!doctype html><html><head><script type="module" src="/dashboard/assets/index-AbC123.js"></script></head><body><div id="root"></div></body></html>';
  const SCRIPT = `console.log(${JSON.stringify('x'.repeat(2000))});`;

  async function gateway(dir: string): Promise<FastifyInstance> {
    const f = Fastify();
    applyConventions(f);
    registerDashboard(f, dir);
    await f.ready();
    return f;
  }

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'kw-dashboard-'));
    mkdirSync(join(root, 'assets'));
    writeFileSync(join(root, 'index.html'), INDEX);
    writeFileSync(join(root, 'assets', 'index-AbC123.js'), SCRIPT);
    writeFileSync(join(root, 'assets', 'index-Def456.css'), 'body{color:red}');
    app = await gateway(root);
  });
  afterAll(async () => {
    await app?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('serves index.html at /dashboard/, not cached, with the CSP; /dashboard redirects there', async () => {
    const r = await app.inject({ method: 'GET', url: '/dashboard/' });
    expect(r.statusCode).toBe(200);
    expect(r.body).toBe(INDEX);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['cache-control']).toBe('no-cache');
    expect(r.headers['content-security-policy']).toBe(DASHBOARD_CSP);
    expect(DASHBOARD_CSP).toMatch(/^default-src 'self'; style-src 'self'; frame-ancestors 'none'(;|$)/);
    expect(DASHBOARD_CSP).not.toMatch(/unsafe-inline|unsafe-eval|data:/);
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['x-frame-options']).toBe('DENY');
    const bare = await app.inject({ method: 'GET', url: '/dashboard' });
    expect(bare.statusCode).toBe(308);
    expect(bare.headers['location']).toBe('/dashboard/');
  });

  it('hashed assets are immutable for a year, gzipped when asked, and answer 304 to their ETag', async () => {
    const r = await app.inject({ method: 'GET', url: '/dashboard/assets/index-AbC123.js', headers: { 'accept-encoding': 'gzip, br' } });
    expect(r.statusCode).toBe(200);
    expect(r.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(r.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(r.headers['content-encoding']).toBe('gzip');
    expect(r.headers['content-security-policy']).toBe(DASHBOARD_CSP);
    expect(gunzipSync(r.rawPayload).toString('utf8')).toBe(SCRIPT);
    const plain = await app.inject({ method: 'GET', url: '/dashboard/assets/index-AbC123.js' });
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body).toBe(SCRIPT);
    const again = await app.inject({ method: 'GET', url: '/dashboard/assets/index-AbC123.js', headers: { 'if-none-match': String(r.headers['etag']) } });
    expect(again.statusCode).toBe(304);
    const css = await app.inject({ method: 'GET', url: '/dashboard/assets/index-Def456.css' });
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
  });

  it('a deep link answers the app (index.html, no-cache, the CSP); HEAD too', async () => {
    for (const url of ['/dashboard/keys/key_abc123', '/dashboard/members', '/dashboard/keys/key_abc123?mode=test']) {
      const r = await app.inject({ method: 'GET', url });
      expect({ url, status: r.statusCode, body: r.body, cache: r.headers['cache-control'], csp: r.headers['content-security-policy'] }).toEqual({ url, status: 200, body: INDEX, cache: 'no-cache', csp: DASHBOARD_CSP });
    }
    const head = await app.inject({ method: 'HEAD', url: '/dashboard/members' });
    expect(head.statusCode).toBe(200);
    expect(head.headers['content-security-policy']).toBe(DASHBOARD_CSP);
  });

  it('a missing asset or file is a 404 in the API shape, never the page; no way out of the folder', async () => {
    for (const url of ['/dashboard/assets/index-Gone99.js', '/dashboard/favicon.ico', '/dashboard/..%2f..%2fpackage.json', '/dashboard/%2e%2e/%2e%2e/package.json']) {
      const r = await app.inject({ method: 'GET', url });
      expect({ url, status: r.statusCode }).toEqual({ url, status: 404 });
      expect(r.body).not.toContain('<html');
      expect(r.body).not.toContain('workspaces');
      // A normalised `..` leaves /dashboard for the router's own 404 (the gateway's not-found shape).
      if (!url.includes('%2e')) expect(r.json()).toMatchObject({ code: 'not_found' });
    }
  });

  it('without a build the gateway still starts: /dashboard/ answers 503 saying why, until the files appear', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'kw-dashboard-none-'));
    const f = await gateway(join(empty, 'dist'));
    try {
      const r = await f.inject({ method: 'GET', url: '/dashboard/keys' });
      expect(r.statusCode).toBe(503);
      expect(r.json()).toEqual({ error: expect.stringContaining('not built'), code: 'unavailable' });
      mkdirSync(join(empty, 'dist'));
      writeFileSync(join(empty, 'dist', 'index.html'), INDEX);
      const later = await f.inject({ method: 'GET', url: '/dashboard/' });
      expect(later.statusCode).toBe(200);
      expect(later.body).toBe(INDEX);
    } finally {
      await f.close();
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
