import { type ErrorBody } from '@keyway/contracts';
import { startInfra, type TestInfra } from '@keyway/testing';
import { request } from 'node:http';
import { connect as tcpConnect } from 'node:net';
import { FakeServices, http, startGateway, type MintedKey, type RunningGateway } from '../../test/fakes';

const err = (b: unknown): ErrorBody => b as ErrorBody;
const ADMIN = { authorization: 'Bearer operator-token-for-tests-0123456789' };

/** Raw bytes on a fresh socket: what Node's HTTP client will not send (no Host header, say). */
function rawExchange(url: string, bytes: string): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(Number(u.port), u.hostname, () => socket.write(bytes));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.on('error', reject);
    // Keep-alive answers leave the socket open: the first complete answer is enough.
    socket.on('data', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const head = text.indexOf('\r\n\r\n');
      const length = /content-length: *(\d+)/i.exec(text);
      if (head !== -1 && length && text.length - head - 4 >= Number(length[1])) {
        socket.destroy();
        resolve(text);
      }
    });
  });
}

function parseRaw(text: string): { status: number; headers: Map<string, string>; body: unknown } {
  const [head = '', body = ''] = text.split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()] as const));
  return { status: Number(statusLine.split(' ')[1]), headers, body: body === '' ? undefined : (JSON.parse(body) as unknown) };
}

/** A POST from a chosen loopback address (127.0.0.2 …): another client, as the gateway sees it. */
function postFrom(localAddress: string, url: string, path: string, headers: Record<string, string>, body: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: unknown }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, method: 'POST', path, localAddress, headers: { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** `depth` nested arrays around a value, as JSON text, built without recursion. */
const nested = (depth: number, inner = '1'): string => '['.repeat(depth) + inner + ']'.repeat(depth);

describe('the edge refuses what the services cannot take, in the documented shape', () => {
  let infra: TestInfra;
  let fake: FakeServices;
  let gw: RunningGateway;
  let key: MintedKey;

  beforeAll(async () => {
    infra = await startInfra('gateway_edge');
    fake = await FakeServices.start(infra.natsUrl);
    gw = await startGateway(infra, { ADMIN_RATE_LIMIT_PER_MINUTE: '1000' });
    key = fake.mint();
  });
  afterAll(async () => {
    await gw?.close();
    await fake?.stop();
    await infra?.stop();
  });

  const post = (path: string, rawBody: string) => http(gw.url, 'POST', path, { key: key.key, rawBody, headers: { 'content-type': 'application/json' } });

  describe('NUL (\\u0000) anywhere is 400 invalid_request naming the field', () => {
    it.each([
      ['a top-level string', '/v1/contacts', '{"type":"lead","name":"a\\u0000b","email":"a@b.co"}', 'name'],
      ['a nested string', '/v1/contacts', '{"type":"lead","name":"a","email":"a@b.co","properties":{"a":{"b":["x","y\\u0000"]}}}', 'properties.a.b.1'],
      ['a key', '/v1/contacts', '{"type":"lead","name":"a","email":"a@b.co","properties":{"k\\u0000":1}}', 'properties.k\\u0000'],
      ['a string of the journeys body', '/v1/journeys', '{"anonymous_id":"\\u0000"}', 'anonymous_id'],
      ['the only character of a string in an array of objects', '/v1/journeys', '{"anonymous_id":"a","touchpoints":[{"type":"custom","occurred_at":"2026-01-01T00:00:00Z","source":"\\u0000"}]}', 'touchpoints.0.source'],
    ])('in %s', async (_label, path, body, field) => {
      const r = await post(path, body);
      expect(r.status).toBe(400);
      expect(err(r.body)).toMatchObject({ code: 'invalid_request', details: [{ field, message: expect.stringContaining('NUL') }] });
      expect(r.headers.get('x-request-id')).toMatch(/^req_/);
    });

    it('in a query value, a query name or a path parameter', async () => {
      const q = await http(gw.url, 'GET', '/v1/contacts?q=a%00b', { key: key.key });
      expect([q.status, err(q.body).code, err(q.body).details]).toEqual([400, 'invalid_request', [{ field: 'q', message: expect.stringContaining('NUL') }]]);
      const name = await http(gw.url, 'GET', '/v1/contacts?a%00=1', { key: key.key });
      expect([name.status, err(name.body).code]).toEqual([400, 'invalid_request']);
      const p = await http(gw.url, 'GET', '/v1/contacts/ct_%00x', { key: key.key });
      expect([p.status, err(p.body).code, err(p.body).details]).toEqual([400, 'invalid_request', [{ field: 'id', message: expect.stringContaining('NUL') }]]);
      const d = await http(gw.url, 'DELETE', '/v1/accounts/%00', { key: key.key });
      expect([d.status, err(d.body).details?.[0]?.field]).toEqual([400, 'id']);
    });

    it('in the admin tenant name', async () => {
      const r = await http(gw.adminUrl, 'POST', '/admin/v1/tenants', { headers: { ...ADMIN, 'content-type': 'application/json' }, rawBody: '{"name":"Acme\\u0000"}' });
      expect(r.status).toBe(400);
      expect(err(r.body)).toMatchObject({ code: 'invalid_request', details: [{ field: 'name' }] });
    });

    it('but not an escaped backslash followed by u0000, nor %2500, which are plain text', async () => {
      const r = await post('/v1/contacts', '{"type":"lead","name":"a\\\\u0000","email":"a@b.co"}');
      expect(r.status).toBe(201);
      const q = await http(gw.url, 'GET', '/v1/contacts?q=%2500', { key: key.key });
      expect(q.status).toBe(200);
    });

    it('a lone surrogate is refused like NUL (jsonb cannot hold one), a well-formed pair is not', async () => {
      for (const escape of ['\\ud800', '\\uDFFF', 'a\\ud83d', '\\ude00b']) {
        const r = await post('/v1/keys', `{"name":"${escape}","scopes":[]}`);
        expect([escape, r.status, err(r.body).details]).toEqual([escape, 400, [{ field: 'name', message: expect.stringContaining('surrogate') }]]);
      }
      const key = await post('/v1/contacts', '{"type":"lead","name":"x","email":"a@b.co","properties":{"\\udc00":1}}');
      expect([key.status, err(key.body).details?.[0]?.field]).toEqual([400, 'properties.\\udc00']);
      expect((await post('/v1/keys', '{"name":"\\ud83d\\ude00 \\u00e9","scopes":[]}')).status).toBe(201);
    });

    it('authentication still comes first', async () => {
      const r = await http(gw.url, 'POST', '/v1/contacts', { rawBody: '{"name":"\\u0000"}', headers: { 'content-type': 'application/json' } });
      expect([r.status, err(r.body).code]).toEqual([401, 'missing_key']);
    });
  });

  describe('JSON nested too deep is 400', () => {
    /** A free-form object `depth` levels deep (the object itself is level 1). */
    const freeForm = (depth: number) => `{"p":${nested(depth - 2, '{}')}}`;
    const props = (depth: number) => `{"type":"lead","name":"a","email":"a@b.co","properties":${freeForm(depth)}}`;

    it('a free-form object of 32 levels passes, 33 is refused naming it; past 64 the edge refuses the body unparsed', async () => {
      expect((await post('/v1/contacts', props(32))).status).toBe(201);
      const over = await post('/v1/contacts', props(33));
      expect(over.status).toBe(400);
      expect(err(over.body)).toMatchObject({ code: 'invalid_request', details: [{ field: 'properties' }] });
      for (const depth of [64, 5_000, 100_000]) {
        const r = await post('/v1/contacts', props(depth));
        expect(r.status).toBe(400);
        expect(err(r.body)).toMatchObject({ code: 'invalid_request', details: [{ field: '(body)', message: expect.stringContaining('64') }] });
      }
      const objects = `{"type":"lead","name":"a","email":"a@b.co","properties":${'{"a":'.repeat(100)}1${'}'.repeat(100)}}`;
      expect(err((await post('/v1/contacts', objects)).body).details).toEqual([{ field: '(body)', message: expect.stringContaining('64') }]);
    });

    it('the deepest body the contracts accept passes the edge: 32 levels of properties in a touchpoint', async () => {
      const touchpoint = `{"type":"custom","occurred_at":"2026-01-01T00:00:00Z","properties":${freeForm(32)}}`;
      const r = await post('/v1/journeys', `{"anonymous_id":"a","touchpoints":[${touchpoint}]}`);
      expect(r.status).toBe(201);
    });

    it('counts brackets in strings as text, escaped quotes included', async () => {
      const text = JSON.stringify(`\\"[[[${'['.repeat(100)}{{{"\\`);
      const r = await post('/v1/contacts', `{"type":"lead","name":${text},"email":"a@b.co","properties":{"s":${JSON.stringify('['.repeat(1_000))}}}`);
      expect(r.status).toBe(201);
    });

    it('no body is no body, but whitespace or null is a body that is not an object (the fuzz found both accepted)', async () => {
      expect((await post('/v1/keys/key_1/revoke', '')).status).toBe(200);
      for (const body of [' ', '\n', 'null']) {
        const r = await post('/v1/keys/key_1/revoke', body);
        expect({ body, status: r.status, code: err(r.body).code }).toEqual({ body, status: 400, code: 'invalid_request' });
      }
    });

    it('still refuses broken JSON as such', async () => {
      for (const body of ['{"a":"unterminated', ']]]', '{"a":1}}}}', `${nested(10)}}`]) {
        const r = await post('/v1/contacts', body);
        expect([r.status, err(r.body).code]).toEqual([400, 'invalid_request']);
      }
    });
  });

  describe('the bus: a body that would not fit NATS with its envelope', () => {
    // A body under the 1 MiB body limit whose RPC envelope (ctx, params, query, body) is over
    // NATS's 1 MiB max_payload: 503 today. Now a client error, at once. A route whose schema
    // refuses a field that large first may answer 400: either way never a 503.
    const contact = (size: number) => {
      const head = '{"type":"lead","name":"a","email":"a@b.co","properties":{"big":"';
      const tail = '"}}';
      return head + 'x'.repeat(size - head.length - tail.length) + tail;
    };
    const journey = (size: number) => {
      const one = (url: string) =>
        `{"type":"page_view","occurred_at":"2026-01-01T00:00:00Z","source":"${'s'.repeat(200)}","medium":"${'m'.repeat(200)}","campaign":"${'c'.repeat(200)}","url":"${url}"}`;
      const head = '{"anonymous_id":"a","touchpoints":[';
      const full = one('x'.repeat(2_000));
      const items: string[] = [];
      // What is left for the items, the commas between them and nothing else (`]}` counted).
      let left = size - head.length - 2;
      while (left > 2 * (full.length + 1)) {
        items.push(full);
        left -= full.length + 1;
      }
      // Two last items share the rest, so each URL stays within the schema's 2,048 characters.
      const urls = left - 1 - 2 * one('').length;
      items.push(one('x'.repeat(Math.floor(urls / 2))), one('x'.repeat(Math.ceil(urls / 2))));
      return `${head}${items.join(',')}]}`;
    };

    it.each([
      ['contacts', '/v1/contacts', contact],
      ['journeys', '/v1/journeys', journey],
    ] as const)('%s: 413 payload_too_large (or 400), never 503', async (_label, path, build) => {
      for (const size of [1_048_400, 1_048_500, 1_048_576]) {
        const body = build(size);
        expect(Buffer.byteLength(body)).toBe(size);
        const r = await post(path, body);
        expect([413, 400]).toContain(r.status);
        if (r.status === 413) expect(err(r.body).code).toBe('payload_too_large');
      }
      const over = await post(path, build(1_048_577));
      expect([over.status, err(over.body).code]).toEqual([413, 'payload_too_large']);
    });
  });

  it('a DELETE reads a body (415, 413 as the document says), a GET does not', async () => {
    const text = await http(gw.url, 'DELETE', '/v1/contacts/ct_1', { key: key.key, rawBody: 'x', headers: { 'content-type': 'text/plain' } });
    expect([text.status, err(text.body).code]).toEqual([415, 'unsupported_media_type']);
    const big = await http(gw.url, 'DELETE', '/v1/contacts/ct_1', { key: key.key, rawBody: 'x'.repeat(1_048_577), headers: { 'content-type': 'application/json' } });
    expect([big.status, err(big.body).code]).toEqual([413, 'payload_too_large']);
    const get = await rawExchange(gw.url, `GET /v1/contacts/ct_1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key.key}\r\nContent-Type: text/plain\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx`);
    expect(parseRaw(get).status).toBe(200);
  });

  describe('a request without a Host header', () => {
    it('gets the documented error shape and a request id', async () => {
      const text = await rawExchange(gw.url, 'GET /v1/whoami HTTP/1.1\r\nConnection: close\r\n\r\n');
      const r = parseRaw(text);
      expect(r.status).toBe(400);
      expect(r.headers.get('x-request-id')).toMatch(/^req_/);
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
      expect(r.body).toMatchObject({ code: 'invalid_request', details: [{ field: 'Host' }] });
    });

    it('HTTP/1.0 needs none', async () => {
      const r = parseRaw(await rawExchange(gw.url, `GET /v1/whoami HTTP/1.0\r\nAuthorization: Bearer ${key.key}\r\n\r\n`));
      expect(r.status).toBe(200);
    });
  });

  describe('headers', () => {
    it('X-Content-Type-Options: nosniff on every answer, errors and 404s included', async () => {
      const answers = [
        await http(gw.url, 'GET', '/v1/whoami', { key: key.key }),
        await http(gw.url, 'GET', '/v1/whoami'),
        await http(gw.url, 'GET', '/nowhere'),
        await http(gw.url, 'GET', '/health/live'),
        await http(gw.url, 'POST', '/v1/contacts', { key: key.key, rawBody: 'x', headers: { 'content-type': 'text/plain' } }),
        await http(gw.url, 'GET', '/v1/contacts/%E0%A4%A', { key: key.key }),
        await http(gw.adminUrl, 'POST', '/admin/v1/tenants', { body: { name: 'x' } }),
      ];
      expect(answers.map((a) => [a.status, a.headers.get('x-content-type-options')])).toEqual(answers.map((a) => [a.status, 'nosniff']));
      const bad = parseRaw(await rawExchange(gw.url, 'GET /v1/whoami HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n'));
      expect([bad.status, bad.headers.get('x-content-type-options')]).toEqual([400, 'nosniff']);
    });

    it('Cache-Control: no-store on the answers that carry a secret, not on the others', async () => {
      const created = await http(gw.url, 'POST', '/v1/keys', { key: key.key, body: { name: 'ci', scopes: [] } });
      expect([created.status, created.headers.get('cache-control')]).toEqual([201, 'no-store']);
      const rotated = await http(gw.url, 'POST', '/v1/keys/key_1/rotate', { key: key.key, body: {} });
      expect([rotated.status, rotated.headers.get('cache-control')]).toEqual([200, 'no-store']);
      const listed = await http(gw.url, 'GET', '/v1/keys', { key: key.key });
      expect([listed.status, listed.headers.get('cache-control')]).toEqual([200, null]);
    });
  });

  describe('the admin API is rate-limited per client address', () => {
    let limited: RunningGateway;
    beforeAll(async () => {
      limited = await startGateway(infra, { ADMIN_RATE_LIMIT_PER_MINUTE: '3' });
    });
    afterAll(async () => {
      await limited?.close();
    });

    it('429 rate_limited with Retry-After once an address spent its calls, wrong tokens counted too; other addresses and /v1 unaffected', async () => {
      const body = JSON.stringify({ name: 'Acme' });
      const first = await postFrom('127.0.0.1', limited.adminUrl, '/admin/v1/tenants', ADMIN, body);
      expect(first.status).toBe(201);
      const wrong = await postFrom('127.0.0.1', limited.adminUrl, '/admin/v1/tenants', { authorization: 'Bearer nope' }, body);
      expect(wrong.status).toBe(401);
      expect((await postFrom('127.0.0.1', limited.adminUrl, '/admin/v1/tenants', ADMIN, body)).status).toBe(201);
      const refused = await postFrom('127.0.0.1', limited.adminUrl, '/admin/v1/tenants', ADMIN, body);
      expect(refused.status).toBe(429);
      expect(refused.body).toMatchObject({ code: 'rate_limited', error: expect.any(String), retry_after: expect.any(Number) });
      const retryAfter = Number(refused.headers['retry-after']);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect((refused.body as { retry_after: number }).retry_after).toBe(retryAfter);
      expect(refused.headers['x-request-id']).toMatch(/^req_/);

      expect((await postFrom('127.0.0.2', limited.adminUrl, '/admin/v1/tenants', ADMIN, body)).status).toBe(201);
      expect((await http(limited.url, 'GET', '/v1/whoami', { key: key.key })).status).toBe(200);
    });

    it('an encoded path reaches the same routes and the same limit (the review found /%61dmin unlimited)', async () => {
      const body = JSON.stringify({ name: 'Acme' });
      const answers = [];
      for (let i = 0; i < 4; i++) answers.push((await postFrom('127.0.0.3', limited.adminUrl, '/%61dmin/v1/tenants', { authorization: 'Bearer nope' }, body)).status);
      expect(answers).toEqual([401, 401, 401, 429]);
    });
  });
});
