import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, resolve, sep } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * The dashboard (apps/dashboard), a static single-page app, at `/dashboard/`. Vite builds it to
 * files; this module serves them without a static-file plugin: the build is a few hundred KB, read
 * once into memory with a gzipped copy of each text file, so a page costs no disk read and no
 * compression per request (and nothing here is an ES module jest would have to transform).
 *
 * - Every answer carries the Content-Security-Policy: only this origin's scripts, styles, images
 *   and API, no inline script or style, never framed.
 * - `assets/*` (content-hashed names): cached for a year, immutable. Anything else, index.html
 *   above all, `no-cache`: revalidated with its ETag, so a deploy is seen at once.
 * - A path that is not a file and has no extension is a deep link: index.html (the app routes
 *   it). A missing asset is a 404, never the page (a script answered with HTML breaks worse).
 * - No build (a fresh clone): the gateway starts anyway; `/dashboard/` answers 503 saying so,
 *   and the files are looked for again on the next request.
 */
export const DASHBOARD_CSP = "default-src 'self'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";
const PREFIX = '/dashboard';
const IMMUTABLE = 'public, max-age=31536000, immutable';

/** apps/dashboard/dist from this file, in src/http (jest) or dist/http (the built gateway). */
const DEFAULT_DASHBOARD_DIR = resolve(__dirname, '../../../dashboard/dist');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json; charset=utf-8',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};
const COMPRESSIBLE = new Set(['.html', '.js', '.css', '.svg', '.json', '.txt', '.map']);

interface StaticFile {
  body: Buffer;
  gzip: Buffer | undefined;
  type: string;
  etag: string;
  cache: string;
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : []));
}

/** The built files by URL path below /dashboard (`/index.html`, `/assets/index-Ab12.js`), or undefined without a build. */
function load(root: string): Map<string, StaticFile> | undefined {
  if (!existsSync(join(root, 'index.html')) || !statSync(root).isDirectory()) return undefined;
  const files = new Map<string, StaticFile>();
  for (const path of walk(root)) {
    const url = `/${relative(root, path).split(sep).join('/')}`;
    const ext = extname(path).toLowerCase();
    const body = readFileSync(path);
    files.set(url, {
      body,
      gzip: COMPRESSIBLE.has(ext) && body.length > 256 ? gzipSync(body, { level: 9 }) : undefined,
      type: TYPES[ext] ?? 'application/octet-stream',
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
      cache: url.startsWith('/assets/') ? IMMUTABLE : 'no-cache',
    });
  }
  return files;
}

function send(req: FastifyRequest, reply: FastifyReply, file: StaticFile): FastifyReply {
  reply.header('content-type', file.type).header('cache-control', file.cache).header('etag', file.etag).header('vary', 'accept-encoding');
  if (req.headers['if-none-match'] === file.etag) return reply.code(304).send();
  const gzip = file.gzip !== undefined && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
  if (gzip) reply.header('content-encoding', 'gzip');
  return reply.code(200).send(gzip ? file.gzip : file.body);
}

export function registerDashboard(fastify: FastifyInstance, root: string = DEFAULT_DASHBOARD_DIR): void {
  let files = load(root);

  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    reply
      .header('content-security-policy', DASHBOARD_CSP)
      .header('x-frame-options', 'DENY')
      .header('referrer-policy', 'no-referrer')
      .header('cross-origin-opener-policy', 'same-origin');
    files ??= load(root);
    if (files === undefined) {
      return reply
        .code(503)
        .header('cache-control', 'no-store')
        .send({ error: 'The dashboard is not built on this server: run `npm run build` (apps/dashboard), then reload', code: 'unavailable' });
    }
    const path = req.url.split('?')[0]!.slice(PREFIX.length);
    if (path === '') return reply.code(308).header('location', `${PREFIX}/`).send();
    let name: string;
    try {
      name = decodeURIComponent(path);
    } catch {
      name = path;
    }
    const file = files.get(name === '/' ? '/index.html' : name);
    if (file !== undefined) return send(req, reply, file);
    if (name.startsWith('/assets/') || extname(name) !== '') {
      return reply.code(404).header('cache-control', 'no-cache').send({ error: 'No such file in the dashboard', code: 'not_found' });
    }
    return send(req, reply, files.get('/index.html')!);
  };

  for (const url of [PREFIX, `${PREFIX}/*`]) fastify.route({ method: 'GET', url, handler });
}
