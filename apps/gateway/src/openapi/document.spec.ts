import { ErrorCode, ROUTES, type Route } from '@keyway/contracts';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { validBody } from '../../test/samples';
import { httpStatus } from '../errors';
import { requestIdOf } from '../http/conventions';
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

const doc: OpenApiDocument = buildOpenApiDocument();
const deref = (v: unknown): Node => (isNode(v) && typeof v['$ref'] === 'string' ? deref(resolve(doc, v['$ref'])) : (v as Node));
const op = (method: string, path: string): Node => {
  const found = doc.paths[path]?.[method.toLowerCase()];
  if (!found) throw new Error(`${method} ${path} is not documented`);
  return found;
};
const allOperations = (): Array<[string, Node]> =>
  Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([m, o]) => [`${m.toUpperCase()} ${path}`, o] as [string, Node]));
const responsesOf = (o: Node): Record<string, Node> => Object.fromEntries(Object.entries(o['responses'] as Node).map(([s, r]) => [s, deref(r)]));
const headersOf = (response: Node): Record<string, Node> => Object.fromEntries(Object.entries((response['headers'] ?? {}) as Node).map(([n, h]) => [n, deref(h)]));
const requiredHeaders = (response: Node): string[] => Object.entries(headersOf(response)).filter(([, h]) => h['required'] === true).map(([n]) => n);

/** JSON Schema validation against the document itself, as a client or a fuzzer would do it. */
const ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }));
ajv.addSchema(doc as unknown as Node, 'openapi');
const validates = (schemaName: string, value: unknown): boolean => {
  const validate = ajv.getSchema(`openapi#/components/schemas/${schemaName}`);
  if (!validate) throw new Error(`no schema ${schemaName}`);
  return validate(value) as boolean;
};
const bodySchemaName = (route: Route): string => {
  const body = ((op(route.method, openApiPath(route.path))['requestBody'] as Node)['content'] as Node)['application/json'] as Node;
  return String((body['schema'] as Node)['$ref']).split('/').pop()!;
};
const routeNamed = (name: string): Route => ROUTES.find((r) => r.name === name)!;

const RATE_LIMIT_HEADERS = ['RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset', 'RateLimit-Policy', 'RateLimit'];
const BODY_METHODS = ['POST', 'PATCH', 'PUT', 'DELETE'];

describe('buildOpenApiDocument', () => {
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
    // A key with any one scope, or a member's session whose role holds one.
    expect(o['security']).toEqual([...route.scopes.map((s) => ({ apiKey: [s] })), { sessionCookie: [...route.scopes] }]);

    const responses = responsesOf(o);
    const success = responses[String(route.status)]!;
    expect(success).toBeDefined();
    // Every answer after authentication carries the limits; one with a secret says no-store.
    expect(requiredHeaders(success).sort()).toEqual(['X-Request-Id', 'X-Content-Type-Options', ...RATE_LIMIT_HEADERS, ...(route.secret ? ['Cache-Control'] : [])].sort());
    if (route.response) {
      const schemaRef = String((((success['content'] as Node)['application/json'] as Node)['schema'] as Node)['$ref']);
      expect(resolve(doc, schemaRef)).toMatchObject({ type: 'object' });
    } else {
      expect(success['content']).toBeUndefined();
    }
    // Every status the server can answer, and no other.
    const expected = [400, 401, 429, 500, 503];
    if (route.scopes.length > 0) expected.push(403);
    if (route.params) expected.push(404);
    if (route.method === 'POST' || route.method === 'PATCH' || route.method === 'PUT') expected.push(409);
    if (route.method === 'POST') expected.push(422);
    if (BODY_METHODS.includes(route.method)) expected.push(413, 415);
    // An upsert answers 201 (created) or 200 (replaced).
    const successes = route.statusInReply ? [200, 201] : [route.status];
    expect(Object.keys(responses).map(Number).sort()).toEqual([...successes, ...expected].sort());
    if (route.body) {
      const body = ((o['requestBody'] as Node)['content'] as Node)['application/json'] as Node;
      expect(resolve(doc, String((body['schema'] as Node)['$ref']))).toMatchObject({ type: 'object' });
      // Without a body the gateway validates `{}`: required exactly when `{}` is refused.
      expect((o['requestBody'] as Node)['required']).toBe(!route.body.safeParse({}).success);
    }
    const params = (o['parameters'] as Node[]).map((p) => (p['$ref'] ? p['$ref'] : `${String(p['in'])}:${String(p['name'])}`));
    if (route.params) expect(params).toContain(route.path.includes(':external_id') ? 'path:external_id' : 'path:id');
    // Every POST takes Idempotency-Key, and says a replay with Idempotent-Replayed.
    expect(params.includes('#/components/parameters/IdempotencyKey')).toBe(route.method === 'POST');
    expect('Idempotent-Replayed' in headersOf(success)).toBe(route.method === 'POST');
    if (route.response && 'hasMore' in ((resolve(doc, String(((((success['content'] as Node)['application/json'] as Node)['schema'] as Node)['$ref']))) as Node)['properties'] as Node)) {
      expect(params).toEqual(expect.arrayContaining(['query:page', 'query:pageSize', 'query:after']));
      const page = resolve(doc, String((((success['content'] as Node)['application/json'] as Node)['schema'] as Node)['$ref'])) as Node;
      expect(Object.keys(page['properties'] as Node)).toEqual(expect.arrayContaining(['next_cursor', 'total_is_estimate', 'hasMore', 'total']));
    }
  });

  it('documents the headers of every answer: the request id and nosniff always, Retry-After on a 429, the limits on /v1', () => {
    for (const [label, o] of allOperations()) {
      const v1 = label.split(' ')[1]!.startsWith('/v1/');
      for (const [status, response] of Object.entries(responsesOf(o))) {
        const headers = headersOf(response);
        expect([label, status, requiredHeaders(response)]).toEqual([label, status, expect.arrayContaining(['X-Request-Id', 'X-Content-Type-Options'])]);
        if (status === '429') expect([label, headers['Retry-After']?.['required']]).toEqual([label, true]);
        if (v1 && status !== '401') expect([label, status, Object.keys(headers)]).toEqual([label, status, expect.arrayContaining(RATE_LIMIT_HEADERS)]);
        if (!v1) expect([label, status, Object.keys(headers).filter((h) => h.startsWith('RateLimit'))]).toEqual([label, status, []]);
      }
    }
  });

  it('narrows each error body to the codes its status carries, with details on 400, required_scope on insufficient_scope, the window on 429', () => {
    const v1 = op('POST', '/v1/keys/{id}/rotate');
    const schemaOf = (status: string): Node => deref(((responsesOf(v1)[status]!['content'] as Node)['application/json'] as Node)['schema']);
    const codes = (schema: Node): string[] => {
      const code = deref((schema['properties'] as Node)['code']);
      return code['const'] !== undefined ? [String(code['const'])] : (code['enum'] as string[]);
    };
    for (const status of ['400', '401', '404', '409', '413', '415', '500', '503']) {
      expect([status, codes(schemaOf(status)).sort()]).toEqual([status, ErrorCode.options.filter((c) => String(httpStatus(c)) === status).sort()]);
    }
    expect(schemaOf('400')['required']).toEqual(expect.arrayContaining(['error', 'code', 'details']));
    const forbidden = (schemaOf('403')['anyOf'] as Node[]).map(deref);
    expect(forbidden.flatMap(codes).sort()).toEqual(ErrorCode.options.filter((c) => httpStatus(c) === 403).sort());
    expect(forbidden.find((s) => codes(s).includes('insufficient_scope'))!['required']).toEqual(expect.arrayContaining(['required_scope']));
    expect(schemaOf('429')['required']).toEqual(expect.arrayContaining(['window', 'limit', 'remaining', 'retry_after']));
  });

  it('states the rules zod refines check: minProperties on PATCH bodies, a journey needs a visitor, scopes do not repeat', () => {
    for (const route of ROUTES.filter((r) => r.method === 'PATCH')) {
      const name = bodySchemaName(route);
      expect([route.name, validates(name, {})]).toEqual([route.name, false]);
      expect([route.name, validates(name, validBody(route))]).toEqual([route.name, true]);
    }
    const journey = bodySchemaName(routeNamed('journeys.create'));
    for (const body of [{}, { touchpoints: [] }]) expect(validates(journey, body)).toBe(false);
    for (const body of [{ contact_id: 'ct_1' }, { anonymous_id: 'a' }, { contact_id: 'ct_1', anonymous_id: 'a' }]) expect(validates(journey, body)).toBe(true);
    const keys = bodySchemaName(routeNamed('keys.create'));
    expect(validates(keys, { name: 'a', scopes: ['contacts:read', 'contacts:read'] })).toBe(false);
    expect(validates(keys, { name: 'a', scopes: ['contacts:read', 'contacts:write'] })).toBe(true);
  });

  it('agrees with the contracts on every body sample: what zod takes the document takes, and the reverse', () => {
    const emails = ['ada@example.com', 'a.b+c@x.co', "o'hara@x.io", '"a b"@x.com', 'a@b', 'a..b@x.co', '.a@x.co', 'a.@x.co', 'x@[1.2.3.4]', 'ä@x.de', `${'a'.repeat(65)}@x.co`, `a@${'b'.repeat(64)}.co`, 'a@-b.co', 'a@b.c'];
    const samples: Array<[Route, unknown]> = [];
    for (const route of ROUTES) if (route.body) samples.push([route, validBody(route)], [route, {}], [route, { unknown_field: 1 }]);
    for (const email of emails) {
      samples.push([routeNamed('users.create'), { name: 'Ada', email, password: 'correct horse' }]);
      samples.push([routeNamed('contacts.create'), { type: 'lead', name: 'Ada', email }]);
      samples.push([routeNamed('users.update'), { email }]);
    }
    const disagreements = samples
      .map(([route, body]) => [route.name, body, route.body!.safeParse(body).success, validates(bodySchemaName(route), body)] as const)
      .filter(([, , zod, document]) => zod !== document);
    expect(disagreements).toEqual([]);
    expect(JSON.stringify(doc)).not.toContain('"format":"email"');
  });

  it('refuses NUL and lone surrogates where the gateway does: strings of bodies, query and path parameters', () => {
    const user = (name: string) => ({ name, email: 'ada@example.com', password: 'correct horse' });
    expect(validates('CreateUserBody', user('a\u0000'))).toBe(false);
    for (const lone of ['\ud800', 'a\udfff', '\ude00\ud83d']) expect(validates('CreateUserBody', user(lone))).toBe(false);
    for (const fine of ['Ada \ud83d\ude00', 'é€', 'x']) expect(validates('CreateUserBody', user(fine))).toBe(true);
    // A blank name is refused by zod (trimmed, then min 1): the document says so too (the fuzz found it).
    for (const blank of [' ', '\t\n']) expect(validates('CreateUserBody', user(blank))).toBe(false);
    const list = op('GET', '/v1/contacts');
    const q = (list['parameters'] as Node[]).find((p) => p['name'] === 'q')!;
    expect(ajv.validate(q['schema'] as Node, 'a\u0000b')).toBe(false);
    expect(ajv.validate(q['schema'] as Node, 'ab')).toBe(true);
    const id = (op('GET', '/v1/contacts/{id}')['parameters'] as Node[]).find((p) => p['name'] === 'id')!;
    expect(ajv.validate(id['schema'] as Node, 'ct_\u0000')).toBe(false);
  });

  it('every pattern can be sampled: no lookahead, which fuzzers generating from patterns cannot take (a blank-name lookahead once stopped npm run fuzz)', () => {
    const patterns = new Set<string>();
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (typeof node === 'object' && node !== null) {
        for (const [k, v] of Object.entries(node)) {
          if (k === 'pattern' && typeof v === 'string') patterns.add(v);
          else walk(v);
        }
      }
    };
    walk(doc);
    expect(patterns.size).toBeGreaterThan(3);
    for (const p of patterns) expect(() => fc.sample(fc.stringMatching(new RegExp(p, 'u')), 3)).not.toThrow();
  });

  it('documents X-Request-Id as the server applies it: echoed exactly when it matches the pattern, else replaced, never refused', () => {
    const parameter = doc.components.parameters['XRequestId']!;
    const schema = parameter['schema'] as Node;
    expect(schema['maxLength']).toBeUndefined();
    expect(parameter['required']).toBe(false);
    const echoed = ajv.compile(schema);
    const answered = ajv.compile(deref(doc.components.headers['X-Request-Id'])['schema'] as Node);
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 140 }), fc.stringMatching(/^[A-Za-z0-9._:@-]{1,130}$/)), (sent) => {
        const id = requestIdOf(sent);
        expect(id === sent).toBe(echoed(sent));
        expect(answered(id)).toBe(true);
      }),
      { numRuns: 2_000 },
    );
    expect(requestIdOf('a'.repeat(129))).toMatch(/^req_/);
  });

  it('lists what whoami.remaining holds, as the gateway fills it', () => {
    const whoami = resolve(doc, String((((responsesOf(op('GET', '/v1/whoami'))['200']!['content'] as Node)['application/json'] as Node)['schema'] as Node)['$ref'])) as Node;
    const remaining = (whoami['properties'] as Node)['remaining'] as Node;
    expect(Object.keys(remaining['properties'] as Node).sort()).toEqual(['burst_per_second', 'daily', 'per_hour', 'per_minute']);
    expect(whoami['required']).toContain('remaining');
  });

  it('describes the refusals only a service can tell on the 400 of the operations that have them', () => {
    const on400 = (method: string, path: string): string => String(responsesOf(op(method, path))['400']!['description']);
    expect(on400('POST', '/v1/keys')).toContain('expires_at');
    expect(on400('POST', '/v1/contacts')).toContain('account_id');
    expect(on400('PATCH', '/v1/contacts/{id}')).toContain('account_id');
    expect(on400('POST', '/v1/journeys')).toContain('contact_id');
    expect(on400('PATCH', '/v1/journeys/{id}')).toContain('contact_id');
  });

  it('says the sizes: nesting, free-form objects, NUL, the body and the bus', () => {
    const description = String(doc.info['description']);
    for (const text of ['64 levels', '32 levels', 'NUL', '1 MiB']) expect(description).toContain(text);
    expect(String(doc.components.responses['PayloadTooLarge']!['description'])).toContain('few hundred bytes');
  });

  it('documents whoami, the operator routes with their own token and 429, and health', () => {
    expect(op('GET', '/v1/whoami')['security']).toEqual([{ apiKey: [] }]);
    expect(Object.keys(op('GET', '/v1/whoami')['responses'] as Node)).not.toContain('403');
    for (const [method, path, secret] of [['POST', '/admin/v1/tenants', true], ['PATCH', '/admin/v1/tenants/{id}', false], ['POST', '/admin/v1/tenants/{id}/root-key', true]] as const) {
      const admin = op(method, path);
      expect(admin['security']).toEqual([{ adminToken: [] }]);
      const responses = responsesOf(admin);
      expect(Object.keys(responses)).toEqual(expect.arrayContaining(['400', '401', '429', '413', '415']));
      const success = Object.entries(responses).find(([s]) => s.startsWith('2'))![1];
      expect(Object.keys(headersOf(success)).includes('Cache-Control')).toBe(secret);
      const limited = deref(((responses['429']!['content'] as Node)['application/json'] as Node)['schema']);
      expect(limited['required']).toEqual(expect.arrayContaining(['code', 'retry_after']));
    }
    const list = op('GET', '/admin/v1/tenants');
    expect(list['security']).toEqual([{ adminToken: [] }]);
    expect((list['parameters'] as Node[]).filter((p) => p['in'] === 'query').map((p) => p['name'])).toEqual(['page', 'pageSize', 'after']);
    expect(Object.keys(responsesOf(list))).toEqual(expect.arrayContaining(['200', '400', '401', '429']));
    expect(doc.components.schemas['CreatedTenant']).toBeDefined();
    expect(op('GET', '/health/live')['security']).toEqual([]);
    expect(Object.keys(op('GET', '/health/ready')['responses'] as Node)).toEqual(['200', '400', '500', '503']);
  });

  it('says where the operator API answers: every /admin/v1 operation, and only those, names the admin listener', () => {
    const ops = Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, o]) => ({ path, method, o })));
    const admin = ops.filter((x) => x.path.startsWith('/admin/v1/'));
    expect(admin.map((x) => `${x.method} ${x.path}`).sort()).toEqual(
      [
        'get /admin/v1/keys',
        'get /admin/v1/relay',
        'get /admin/v1/tenants',
        'get /admin/v1/tenants/{id}/audit/verify',
        'patch /admin/v1/tenants/{id}',
        'post /admin/v1/keys/{id}/revoke',
        'post /admin/v1/tenants',
        'post /admin/v1/tenants/{id}/root-key',
      ].sort(),
    );
    for (const { o } of admin) {
      expect(o['servers']).toEqual([expect.objectContaining({ url: '{admin}', variables: { admin: expect.objectContaining({ default: 'http://127.0.0.1:3100' }) } })]);
      expect(o['security']).toEqual([{ adminToken: [] }]);
    }
    for (const { o } of ops.filter((x) => !x.path.startsWith('/admin/'))) expect(o['servers']).toBeUndefined();
    // The key finder takes a prefix only: a whole key (a secret) does not match its pattern.
    const prefix = (op('GET', '/admin/v1/keys')['parameters'] as Node[]).find((p) => p['name'] === 'prefix')!;
    expect(prefix['required']).toBe(true);
    const pattern = new RegExp(String((prefix['schema'] as Node)['pattern']));
    expect(pattern.test('kw_live_abcd1234')).toBe(true);
    expect(pattern.test(`kw_live_abcd1234_${'a'.repeat(38)}`)).toBe(false);
    const revoke = deref(((op('POST', '/admin/v1/keys/{id}/revoke')['requestBody'] as Node)['content'] as Node)['application/json'] as Node);
    expect(deref(revoke['schema'] as Node)['required']).toEqual(['reason']);
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
