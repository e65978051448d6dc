import { ROUTES } from '@keyway/contracts';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { buildOpenApiDocument, openApiPath, type OpenApiDocument } from './document';

type Node = { [key: string]: unknown };
const isNode = (v: unknown): v is Node => typeof v === 'object' && v !== null;

/** Every `$ref` in the document, with where it was found. */
function refs(value: unknown, at = '#'): Array<[string, string]> {
  if (Array.isArray(value)) return value.flatMap((v, i) => refs(v, `${at}/${i}`));
  if (!isNode(value)) return [];
  return Object.entries(value).flatMap(([k, v]) => (k === '$ref' && typeof v === 'string' ? [[at, v] as [string, string]] : refs(v, `${at}/${k}`)));
}

function resolve(doc: unknown, pointer: string): unknown {
  return pointer
    .replace(/^#\//, '')
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce<unknown>((node, key) => (isNode(node) ? node[key] : undefined), doc);
}

describe('buildOpenApiDocument', () => {
  const doc: OpenApiDocument = buildOpenApiDocument();
  const op = (method: string, path: string): Node => {
    const found = doc.paths[path]?.[method.toLowerCase()];
    if (!found) throw new Error(`${method} ${path} is not documented`);
    return found;
  };

  it('is an OpenAPI 3.1 document whose every $ref resolves', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    const all = refs(doc);
    expect(all.length).toBeGreaterThan(100);
    const broken = all.filter(([, ref]) => resolve(doc, ref) === undefined);
    expect(broken).toEqual([]);
    expect(JSON.parse(JSON.stringify(doc))).toEqual(doc);
  });

  it('has unique operation ids and only Fastify-free paths', () => {
    const ids = Object.values(doc.paths).flatMap((methods) => Object.values(methods).map((o) => o['operationId']));
    expect(new Set(ids).size).toBe(ids.length);
    expect(Object.keys(doc.paths).filter((p) => p.includes(':'))).toEqual([]);
  });

  it.each(ROUTES.map((r) => [`${r.method} ${r.path}`, r] as const))('documents %s from ROUTES', (_label, route) => {
    const o = op(route.method, openApiPath(route.path));
    expect(o['operationId']).toBe(route.name);
    expect(o['tags']).toEqual([route.tag]);
    expect(o['x-required-scopes']).toEqual(route.scopes);
    for (const scope of route.scopes) expect(String(o['description'])).toContain(scope);
    expect(o['security']).toEqual(route.scopes.map((s) => ({ apiKey: [s] })));

    const responses = o['responses'] as Record<string, Node>;
    const success = responses[String(route.status)] as Node;
    expect(success).toBeDefined();
    expect(Object.keys(success['headers'] as Node)).toEqual(expect.arrayContaining(['X-Request-Id', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset']));
    if (route.response) {
      const schemaRef = String((((success['content'] as Node)['application/json'] as Node)['schema'] as Node)['$ref']);
      expect(resolve(doc, schemaRef)).toMatchObject({ type: 'object' });
    } else {
      expect(success['content']).toBeUndefined();
    }
    for (const status of ['400', '401', '403', '429', '500', '503']) expect(responses[status]).toBeDefined();
    if (route.params) expect(responses['404']).toBeDefined();
    if (route.body) {
      expect(responses['413']).toBeDefined();
      expect(responses['415']).toBeDefined();
      const body = ((o['requestBody'] as Node)['content'] as Node)['application/json'] as Node;
      expect(resolve(doc, String((body['schema'] as Node)['$ref']))).toMatchObject({ type: 'object' });
    }
    const params = (o['parameters'] as Node[]).map((p) => (p['$ref'] ? p['$ref'] : `${String(p['in'])}:${String(p['name'])}`));
    if (route.params) expect(params).toContain('path:id');
    if (route.response && 'hasMore' in ((resolve(doc, String(((((success['content'] as Node)['application/json'] as Node)['schema'] as Node)['$ref']))) as Node)['properties'] as Node)) {
      expect(params).toEqual(expect.arrayContaining(['query:page', 'query:pageSize']));
    }
  });

  it('documents the error bodies: details on 400, required_scope on 403, Retry-After and the window on 429', () => {
    const responses = doc.components.responses;
    const schemaOf = (name: string) => resolve(doc, String(((((responses[name] as Node)['content'] as Node)['application/json'] as Node)['schema'] as Node)['$ref'])) as Node;
    expect(schemaOf('InvalidRequest')['required']).toEqual(expect.arrayContaining(['error', 'code', 'details']));
    expect(schemaOf('InsufficientScope')['required']).toEqual(expect.arrayContaining(['required_scope']));
    expect(schemaOf('RateLimited')['required']).toEqual(expect.arrayContaining(['window', 'limit', 'remaining', 'retry_after']));
    expect(Object.keys((responses['RateLimited'] as Node)['headers'] as Node)).toEqual(expect.arrayContaining(['Retry-After', 'RateLimit-Reset', 'X-Request-Id']));
    for (const [, response] of Object.entries(responses)) expect(Object.keys(response['headers'] as Node)).toContain('X-Request-Id');
  });

  it('documents whoami, tenant creation with the operator token, and health', () => {
    expect(op('GET', '/v1/whoami')['security']).toEqual([{ apiKey: [] }]);
    const admin = op('POST', '/admin/v1/tenants');
    expect(admin['security']).toEqual([{ adminToken: [] }]);
    expect(Object.keys(admin['responses'] as Node)).toEqual(expect.arrayContaining(['201', '400', '401']));
    expect(doc.components.schemas['CreatedTenant']).toBeDefined();
    expect(op('GET', '/health/live')['security']).toEqual([]);
    expect(Object.keys(op('GET', '/health/ready')['responses'] as Node)).toEqual(['200', '503']);
  });

  it('never exposes internal schemas (the verification record carries a hash)', () => {
    expect(Object.keys(doc.components.schemas)).not.toContain('VerificationRecord');
    expect(JSON.stringify(doc)).not.toContain('"hash"');
  });
});

/**
 * registerDocs runs in a child Node process: @fastify/static (under @fastify/swagger-ui) loads
 * content-disposition 3, an ES module that jest's CommonJS runtime cannot require unless
 * jest.config.js lets swc transform it; plain Node 20.19+ requires it fine, as the gateway will.
 */
interface Probe {
  json: { status: number; type: string; body: string };
  page: { status: number; type: string; body: string };
  assets: Array<{ url: string; status: number }>;
  initializer: { status: number; body: string };
}

function probeDocs(): Probe {
  const loader = join(__dirname, '../../bench/load-ts.js');
  const docs = join(__dirname, 'docs.ts');
  const script = `
    require(${JSON.stringify(loader)});
    const Fastify = require('fastify');
    const { registerDocs } = require(${JSON.stringify(docs)});
    (async () => {
      const app = Fastify();
      registerDocs(app);
      await app.ready();
      const get = async (url) => { const r = await app.inject({ method: 'GET', url }); return { status: r.statusCode, type: String(r.headers['content-type']), body: r.body }; };
      const json = await get('/docs/openapi.json');
      const page = await get('/docs');
      const assets = [];
      for (const m of page.body.matchAll(/(?:src|href)="([^"]+)"/g)) {
        const url = /^(https?:)?\\/\\//.test(m[1]) ? m[1] : m[1].startsWith('/') ? m[1] : '/docs/' + m[1].replace(/^\\.\\//, '');
        assets.push({ url, status: url.startsWith('/') ? (await get(url)).status : -1 });
      }
      const initializer = await get('/docs/static/swagger-initializer.js');
      await app.close();
      process.stdout.write(JSON.stringify({ json, page, assets, initializer }));
    })().catch((err) => { console.error(err); process.exit(1); });
  `;
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: join(__dirname, '../../../..'), encoding: 'utf8', timeout: 30_000 })) as Probe;
}

describe('registerDocs', () => {
  let probe: Probe;
  beforeAll(() => {
    probe = probeDocs();
  });

  it('serves the document at /docs/openapi.json', () => {
    expect(probe.json.status).toBe(200);
    expect(probe.json.type).toContain('application/json');
    expect(JSON.parse(probe.json.body)).toEqual(JSON.parse(JSON.stringify(buildOpenApiDocument())));
  });

  it('serves a human page at /docs with every asset local', () => {
    expect(probe.page.status).toBe(200);
    expect(probe.page.type).toContain('text/html');
    expect(probe.assets.length).toBeGreaterThan(0);
    expect(probe.assets.filter((a) => a.status !== 200)).toEqual([]);
    expect(probe.initializer.status).toBe(200);
    // Swagger UI is told no validator URL (the default one is online) and loads the document from here.
    expect(probe.initializer.body).toContain('validatorUrl: null');
    const code = probe.initializer.body.replace(/\/\/ .*$/gm, '');
    expect(code).not.toMatch(/https?:\/\//);
  });
});
