import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createKeywayClient, isKeywayError, KeywayApiError, type KeywayClientOptions } from './index';

/** What the local server saw of one request. */
interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}
/** The server's answer to the n-th request (from 0); `'drop'` closes the connection unanswered. */
type Script = (n: number, seen: Seen) => { status: number; headers?: Record<string, string>; body?: unknown } | 'drop';

/**
 * A local HTTP server answering from a script and recording every request: the retry rules are
 * about what goes over the wire and when, so the tests watch the wire.
 */
async function serve(script: Script): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const s: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, at: Date.now() };
      const answer = script(seen.length, s);
      seen.push(s);
      if (answer === 'drop') return void req.socket.destroy();
      const text = answer.body === undefined ? '' : typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
      res.writeHead(answer.status, { 'x-request-id': `req_${seen.length}`, ...(answer.body !== undefined && typeof answer.body !== 'string' ? { 'content-type': 'application/json' } : {}), ...answer.headers });
      res.end(text);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

const WHOAMI = { api_key_id: 'key_1', prefix: 'kw_test_abcd1234', tenant_id: 'ten_1', scopes: ['keys:read'], environment: 'test', rate_limit: {}, expires_at: null };
const RATE_LIMITED = (retryAfter: number) => ({
  status: 429,
  headers: { 'retry-after': String(retryAfter) },
  body: { error: 'Rate limit exceeded', code: 'rate_limited', window: 'burst_per_second', limit: 1, remaining: 0, retry_after: retryAfter },
});
const UNAVAILABLE = { status: 503, headers: { 'retry-after': '0' }, body: { error: 'Service unavailable', code: 'unavailable' } };
const KEY = { id: 'key_1', name: 'ci', prefix: 'kw_test_abcd1234', key: null };

let server: Awaited<ReturnType<typeof serve>> | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});
const client = (opts: Partial<KeywayClientOptions> = {}) => createKeywayClient({ baseUrl: server!.url, apiKey: 'kw_test_x', ...opts });

describe('createKeywayClient: retries', () => {
  it('retries a GET after a 429, waiting what Retry-After says, and answers the typed body', async () => {
    server = await serve((n) => (n === 0 ? RATE_LIMITED(1) : { status: 200, body: WHOAMI }));
    const me = await client().GET('/v1/whoami');
    expect(me.prefix).toBe('kw_test_abcd1234');
    expect(server.seen).toHaveLength(2);
    // Retry-After: 1 is a second: not sooner (a little slack for the timer's granularity).
    expect(server.seen[1]!.at - server.seen[0]!.at).toBeGreaterThanOrEqual(950);
    expect(server.seen[1]!.headers['authorization']).toBe('Bearer kw_test_x');
  });

  it('stops after `retries` retries and throws the last answer as a KeywayApiError', async () => {
    server = await serve(() => UNAVAILABLE);
    const err = await client({ retries: 3 }).GET('/v1/whoami').catch((e: unknown) => e);
    expect(server.seen).toHaveLength(4);
    expect(err).toBeInstanceOf(KeywayApiError);
    expect(err).toMatchObject({ status: 503, code: 'unavailable', requestId: 'req_4' });
  });

  it('makes one attempt only with retries: 0', async () => {
    server = await serve(() => UNAVAILABLE);
    await expect(client({ retries: 0 }).GET('/v1/whoami')).rejects.toMatchObject({ code: 'unavailable' });
    expect(server.seen).toHaveLength(1);
  });

  it('does not wait for a Retry-After beyond its cap: the 429 comes back at once, with retryAfter', async () => {
    server = await serve(() => RATE_LIMITED(3600));
    const started = Date.now();
    const err = (await client({ maxRetryDelayMs: 8_000 }).GET('/v1/whoami').catch((e: unknown) => e)) as KeywayApiError;
    // Not even the cap was waited (a loaded machine may still take a moment to answer).
    expect(Date.now() - started).toBeLessThan(6_000);
    expect(server.seen).toHaveLength(1);
    expect(err).toMatchObject({ status: 429, code: 'rate_limited', window: 'burst_per_second', retryAfter: 3600 });
  });

  it('gives a POST one Idempotency-Key for the whole call, the same on every retry, and a new one per call', async () => {
    server = await serve((n) => (n === 0 || n === 2 ? UNAVAILABLE : { status: 201, body: KEY }));
    const keyway = client();
    await keyway.POST('/v1/keys', { body: { name: 'ci', scopes: ['contacts:read'] } });
    await keyway.POST('/v1/keys', { body: { name: 'ci', scopes: ['contacts:read'] } });
    const keys = server.seen.map((s) => s.headers['idempotency-key']);
    expect(keys[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(keys[1]).toBe(keys[0]);
    expect(keys[2]).toBe(keys[3]);
    expect(keys[2]).not.toBe(keys[0]);
    // The body is sent whole on the retry too.
    expect(server.seen.map((s) => JSON.parse(s.body) as unknown)).toEqual(Array(4).fill({ name: 'ci', scopes: ['contacts:read'] }));
  });

  it("keeps the caller's own Idempotency-Key across retries", async () => {
    server = await serve((n) => (n === 0 ? UNAVAILABLE : { status: 201, body: KEY }));
    await client().POST('/v1/keys', { body: { name: 'ci', scopes: ['contacts:read'] }, params: { header: { 'Idempotency-Key': 'order-1234-create-key' } } });
    expect(server.seen.map((s) => s.headers['idempotency-key'])).toEqual(['order-1234-create-key', 'order-1234-create-key']);
  });

  it('never retries a POST without an Idempotency-Key (idempotencyKeys: false): it might have been done', async () => {
    server = await serve(() => UNAVAILABLE);
    await expect(client({ idempotencyKeys: false }).POST('/v1/keys', { body: { name: 'ci', scopes: ['contacts:read'] } })).rejects.toMatchObject({ code: 'unavailable' });
    expect(server.seen).toHaveLength(1);
    expect(server.seen[0]!.headers['idempotency-key']).toBeUndefined();
  });

  it('never retries a POST where Web Crypto cannot make a key (an insecure browser context)', async () => {
    server = await serve(() => UNAVAILABLE);
    // randomUUID lives on Crypto.prototype: an own property hides it, deleting it brings it back.
    Object.defineProperty(globalThis.crypto, 'randomUUID', { value: undefined, configurable: true });
    try {
      await expect(client().POST('/v1/keys', { body: { name: 'ci', scopes: ['contacts:read'] } })).rejects.toMatchObject({ code: 'unavailable' });
    } finally {
      delete (globalThis.crypto as { randomUUID?: unknown }).randomUUID;
    }
    expect(typeof globalThis.crypto.randomUUID).toBe('function');
    expect(server.seen).toHaveLength(1);
  });

  it('retries a GET whose connection failed, and a POST with its key; then gives up', async () => {
    server = await serve((n) => (n === 0 ? 'drop' : { status: 200, body: WHOAMI }));
    await expect(client().GET('/v1/whoami')).resolves.toMatchObject({ tenant_id: 'ten_1' });
    expect(server.seen).toHaveLength(2);
    await server.close();
    server = await serve(() => 'drop');
    await expect(client({ retries: 1 }).POST('/v1/keys', { body: { name: 'ci', scopes: ['contacts:read'] } })).rejects.toThrow('fetch failed');
    expect(server.seen).toHaveLength(2);
  });

  it('stops waiting when the call is aborted', async () => {
    server = await serve(() => RATE_LIMITED(10));
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 100);
    const started = Date.now();
    await expect(client().GET('/v1/whoami', { signal: abort.signal })).rejects.toMatchObject({ name: 'AbortError' });
    // Retry-After was 10 s.
    expect(Date.now() - started).toBeLessThan(8_000);
    expect(server.seen).toHaveLength(1);
  });

  it('does not retry what retrying cannot fix (a 400, a 409, a 500)', async () => {
    for (const status of [400, 409, 500]) {
      await server?.close();
      server = await serve(() => ({ status, body: { error: 'no', code: status === 400 ? 'invalid_request' : status === 409 ? 'conflict' : 'internal' } }));
      await expect(client().GET('/v1/whoami')).rejects.toMatchObject({ status });
      expect(server.seen).toHaveLength(1);
    }
  });
});

describe('createKeywayClient: errors', () => {
  it('turns the error body into a KeywayApiError: status, code, message, request id and the extra fields', async () => {
    server = await serve(() => ({ status: 403, body: { error: 'This key lacks the keys:write scope', code: 'insufficient_scope', required_scope: 'keys:write' } }));
    const err = await client()
      .POST('/v1/keys', { body: { name: 'ci', scopes: ['contacts:read'] } })
      .catch((e: unknown) => e);
    expect(isKeywayError(err, 'insufficient_scope')).toBe(true);
    expect(isKeywayError(err, 'not_found')).toBe(false);
    expect(err).toMatchObject({ name: 'KeywayApiError', status: 403, code: 'insufficient_scope', message: 'This key lacks the keys:write scope', requestId: 'req_1', requiredScope: 'keys:write' });
    if (!isKeywayError(err)) throw new Error('not a KeywayApiError');
    // The code is a union: a switch over it is checked by the compiler.
    const handled: string = err.code === 'insufficient_scope' ? `needs ${err.requiredScope}` : 'other';
    expect(handled).toBe('needs keys:write');
  });

  it('keeps a 400’s details', async () => {
    const details = [{ field: 'name', message: 'Required' }];
    server = await serve(() => ({ status: 400, body: { error: 'The request is invalid', code: 'invalid_request', details } }));
    await expect(client().POST('/v1/keys', { body: { name: '', scopes: [] } })).rejects.toMatchObject({ code: 'invalid_request', details, body: { details } });
  });

  it('gives an answer that is not the API’s (a proxy’s HTML page) the code of its status', async () => {
    server = await serve(() => ({ status: 502, headers: { 'content-type': 'text/html' }, body: '<html>Bad gateway</html>' }));
    await expect(client().GET('/v1/whoami')).rejects.toMatchObject({ status: 502, code: 'unavailable', message: expect.stringContaining('Bad gateway') });
  });

  it('answers a 204 with undefined', async () => {
    server = await serve(() => ({ status: 204 }));
    await expect(client().DELETE('/v1/contacts/{id}', { params: { path: { id: 'ct_1' } } })).resolves.toBeUndefined();
  });
});

describe('createKeywayClient: a session (the dashboard)', () => {
  it('sends no Authorization, includes credentials, and the CSRF token on changes only, read at each call', async () => {
    server = await serve((_n, s) => (s.method === 'GET' ? { status: 200, body: WHOAMI } : { status: 201, body: KEY }));
    const credentials: string[] = [];
    let token = 'csrf-1';
    const keyway = createKeywayClient({
      baseUrl: server.url,
      credentials: 'include',
      csrfToken: () => token,
      headers: { 'Keyway-Mode': 'test' },
      fetch: (req) => {
        credentials.push(req.credentials);
        return fetch(req);
      },
    });
    await keyway.GET('/v1/whoami');
    await keyway.POST('/v1/keys', { body: { name: 'ci', scopes: ['contacts:read'] } });
    token = 'csrf-2';
    await keyway.PATCH('/v1/keys/{id}', { params: { path: { id: 'key_1' } }, body: { enabled: false } });
    expect(credentials).toEqual(['include', 'include', 'include']);
    expect(server.seen.map((s) => [s.method, s.headers['authorization'], s.headers['x-csrf-token'], s.headers['keyway-mode']])).toEqual([
      ['GET', undefined, undefined, 'test'],
      ['POST', undefined, 'csrf-1', 'test'],
      ['PATCH', undefined, 'csrf-2', 'test'],
    ]);
  });
});
