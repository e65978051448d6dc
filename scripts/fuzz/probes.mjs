/**
 * Issue 8's probes that a random walk would meet only by luck: input rules on every operation,
 * references to other tenants' resources, sizes at the bus's 1 MiB edge, a request without Host.
 * Functions over the running Fuzzer (`f`).
 */
import net from 'node:net';
import { judge } from './checks.mjs';
import { clone, sampleValid } from './values.mjs';

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * The input rules of issue 8 (§3, §7) on every operation they apply to, so even a short run
 * meets each: NUL in a body string, in a path id and in a query value; 5,000 and 40 levels and
 * 24 KB in a free-form object; an empty body to change; a repeated item in a list; a lone
 * surrogate in a string.
 */
export async function probeHardening(f, rng) {
  const bodyCases = [
    ['nul', {}],
    ['deep_nesting', { depth: 5000, freeForm: true }],
    ['deep_nesting', { depth: 40, freeForm: true }],
    ['free_form_size', { bytes: 24_000 }],
    ['empty_object', {}],
    ['duplicate_items', {}],
    ['lone_surrogate', {}],
  ];
  for (const op of f.ops) {
    const { id } = await f.idFor(op, rng);
    const base = f.buildValid(op, rng, 'A', id, { full: true });
    const cases = [];
    if (op.body?.schema) for (const [family, opts] of bodyCases) cases.push([family, opts]);
    if (op.hasPathParams) cases.push(['path_nul', {}]);
    if (op.parameters.some((p) => p.in === 'query' && p.schema?.type === 'string')) cases.push(['query_nul_string', {}]);
    for (const [family, opts] of cases) {
      let out;
      if (family === 'query_nul_string') {
        const p = op.parameters.find((x) => x.in === 'query' && x.schema?.type === 'string');
        out = { req: { ...base, query: { ...base.query, [p.name]: 'a\u0000b' } }, note: `NUL in ${p.name}` };
      } else out = f.applyFamily(family, op, base, rng, 'A', opts);
      if (out) await f.send(op, out.req, { id: out.id ?? (id ? 'live' : undefined), family, note: out.note });
    }
  }
}

/** A body that names another tenant's resource (or one nobody made) must not be accepted. */
export async function probeReferences(f, rng) {
  for (const op of f.ops) {
    if (!op.body?.schema?.properties || f.isAdmin(op)) continue;
    for (const name of Object.keys(op.body.schema.properties)) {
      const col = f.refCollection(name);
      if (!col) continue;
      for (const [label, value] of [
        ["another tenant's", f.pools.B[col]?.[0]],
        ['a made-up', `${(f.pools.A[col]?.[0] ?? 'x_').split('_')[0]}_${'0'.repeat(20)}`],
      ]) {
        if (!value) continue;
        const { id } = await f.idFor(op, rng);
        const req = f.buildValid(op, rng, 'A', id);
        req.body = { ...(isObject(req.body) ? req.body : f.patchRefs(sampleValid(op.body.schema, rng, f.v), op.body.schema, 'A', rng)), [name]: value };
        await f.send(op, req, { id: id ? 'live' : undefined, refs: 'foreign', refsWhy: `${name} is ${label} id`, family: 'foreign_reference', note: `${name}: ${label} id` });
      }
    }
    // A list filtered by another tenant's id shows nothing of theirs.
    if (op.method === 'GET' && !op.hasPathParams) {
      for (const p of op.parameters.filter((x) => x.in === 'query')) {
        const col = f.refCollection(p.name);
        const value = col && f.pools.B[col]?.[0];
        if (!value) continue;
        const r = await f.send(op, { caller: f.tenants.A.worker, query: { [p.name]: value } }, { family: 'foreign_filter', note: `${p.name} of another tenant` });
        if (r.status === 200 && Array.isArray(r.json?.data) && r.json.data.length > 0) {
          f.failures.push({ op: op.id, kind: 'cross_tenant_leak', message: `filtering by another tenant's ${p.name} listed ${r.json.data.length} items`, family: 'foreign_filter', expected: 'success', request: { method: 'GET', url: `${op.path}?${p.name}=${value}`, caller: 'worker A' }, response: { status: 200, body: r.text.slice(0, 300) } });
        }
      }
    }
  }
}

/**
 * Sizes at NATS's 1 MiB edge (issue 8, §4): a valid body just under and just over 1 MiB, a big
 * free-form object followed by a list, and a journey whose answer outgrows the bus.
 */
export async function probeSizes(f, rng) {
  const create = f.opAt('POST', '/v1/journeys');
  const addTouchpoint = f.opAt('POST', '/v1/journeys/{id}/touchpoints');
  const getJourney = f.opAt('GET', '/v1/journeys/{id}');
  const listJourneys = f.opAt('GET', '/v1/journeys');
  const deleteJourney = f.opAt('DELETE', '/v1/journeys/{id}');
  const tpSchema = addTouchpoint?.body?.schema;
  const family = 'sizes';
  if (create && tpSchema) {
    // The largest touchpoint the document allows, repeated until the body has the size wanted.
    const big = maximal(f, tpSchema, rng);
    const bodyOf = (bytes) => {
      const one = Buffer.byteLength(JSON.stringify(big)) + 1;
      const head = { anonymous_id: `fuzz-size-${rng.int(1e9)}`, touchpoints: [] };
      const n = Math.ceil((bytes - Buffer.byteLength(JSON.stringify(head))) / one);
      const body = { ...head, touchpoints: Array.from({ length: n }, () => clone(big)) };
      // One item too many, then the last one's strings shortened to land on the exact size.
      let over = Buffer.byteLength(JSON.stringify(body)) - bytes;
      const last = body.touchpoints[n - 1];
      for (const k of Object.keys(last)) {
        if (over <= 0 || typeof last[k] !== 'string' || k === 'type' || k === 'occurred_at') continue;
        const cut = Math.min(over, last[k].length);
        last[k] = last[k].slice(0, last[k].length - cut);
        over -= cut;
      }
      return body;
    };
    for (const bytes of [1_048_400, 1_048_577]) {
      const body = bodyOf(bytes);
      const r = await f.send(create, { caller: f.tenants.A.worker, body }, { family, note: `a ${Buffer.byteLength(JSON.stringify(body))}-byte journey` });
      const id = r.status === 201 ? f.idOf(r.json) : undefined;
      if (id && deleteJourney) await f.send(deleteJourney, { caller: f.tenants.A.worker, params: { id } }, { id: 'live', family });
    }
    // A journey whose answer grows past the bus limit one touchpoint at a time.
    const r = await f.send(create, { caller: f.tenants.A.worker, body: bodyOf(1_000_000) }, { family, note: 'a 1,000,000-byte journey' });
    const id = r.status === 201 ? f.idOf(r.json) : undefined;
    if (id) {
      for (let i = 0; i < 30; i++) {
        const t = await f.send(addTouchpoint, { caller: f.tenants.A.worker, params: { id }, body: clone(big) }, { id: 'live', family, note: `touchpoint ${i + 1} added to a journey of ~1 MB` });
        if (!(t.status >= 200 && t.status < 300)) break;
        // Once the journey embeds only its latest touchpoints, its answer stops growing: enough.
        if (i >= 8 && Buffer.byteLength(t.text) < 1_000_000) break;
      }
      if (getJourney) await f.send(getJourney, { caller: f.tenants.A.worker, params: { id } }, { id: 'live', family, note: 'read back the journey of ~1 MB' });
      if (listJourneys) await f.send(listJourneys, { caller: f.tenants.A.worker, query: { pageSize: '50' } }, { family, note: 'list while a ~1 MB journey exists' });
      if (deleteJourney) await f.send(deleteJourney, { caller: f.tenants.A.worker, params: { id } }, { id: 'live', family });
    }
  }
  // A free-form object far over its budget, then the list it would break.
  const accounts = f.creates.get('/v1/accounts');
  const listAccounts = f.opAt('GET', '/v1/accounts');
  const deleteAccount = f.opAt('DELETE', '/v1/accounts/{id}');
  if (accounts) {
    // Two of them: a page holding both is over 1 MiB, whatever each one's size.
    const ids = [];
    for (let i = 0; i < 2; i++) {
      const body = { ...f.buildValid(accounts, rng, 'A').body, properties: { blob: 'b'.repeat(600_000) } };
      const r = await f.send(accounts, { caller: f.tenants.A.worker, body }, { family, note: 'an account with 600 KB of properties' });
      if (r.status === 201 && f.idOf(r.json)) ids.push(f.idOf(r.json));
    }
    if (listAccounts) await f.send(listAccounts, { caller: f.tenants.A.worker, query: { pageSize: '50' } }, { family, note: `list after two 600 KB accounts were sent (${ids.length} stored)` });
    for (const id of ids) if (deleteAccount) await f.send(deleteAccount, { caller: f.tenants.A.worker, params: { id } }, { id: 'live', family });
  }
}

/** A valid value with every optional string at its longest (no pattern or format to keep). */
function maximal(f, schema, rng) {
  const v = sampleValid(schema, rng, f.v);
  for (const [k, s] of Object.entries(schema.properties ?? {})) {
    const longest = s.type === 'string' && s.maxLength !== undefined && !s.format && !s.enum ? 'm'.repeat(s.maxLength) : undefined;
    if (longest !== undefined && (!s.pattern || new RegExp(s.pattern, 'u').test(longest))) v[k] = longest;
    else if (s.type === 'object') delete v[k];
  }
  return v;
}

/** HTTP/1.1 without Host: Node refuses it before any route, with its own bare 400 (issue 8, §6). */
export async function probeNoHost(f) {
  const op = f.ops.find((o) => o.method === 'GET' && o.security.kind === 'apiKey' && !o.hasPathParams && o.responses['400']);
  if (!op) return;
  const url = new URL(f.baseUrl);
  const answer = await new Promise((resolve) => {
    const chunks = [];
    const socket = net.connect(Number(url.port || 80), url.hostname, () => {
      socket.write(`GET ${op.path} HTTP/1.1\r\nAuthorization: Bearer ${f.tenants.A.worker.secret}\r\nConnection: close\r\n\r\n`);
    });
    socket.setTimeout(f.timeoutMs, () => socket.destroy(new Error('timeout')));
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', (err) => resolve({ error: String(err) }));
    socket.on('close', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const [head, ...rest] = raw.split('\r\n\r\n');
      const lines = head.split('\r\n');
      const status = Number(lines[0]?.split(' ')[1]);
      const headers = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const text = rest.join('\r\n\r\n');
      let json;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      resolve(Number.isFinite(status) ? { status, headers, text, json } : { error: `no HTTP answer: ${JSON.stringify(raw.slice(0, 100))}` });
    });
  });
  f.sent++;
  const expect = { kind: 'any' };
  f.record(op, answer, expect);
  for (const x of judge(op, {}, answer, expect, f.v)) {
    f.failures.push({ op: op.id, kind: x.kind, message: x.message, family: 'no_host', note: 'HTTP/1.1 request without a Host header', expected: 'any', request: { method: 'GET', url: op.path, caller: f.tenants.A.worker.label, raw: 'no Host header' }, response: answer.error ? { error: answer.error } : { status: answer.status, body: answer.text.slice(0, 300) } });
  }
}
