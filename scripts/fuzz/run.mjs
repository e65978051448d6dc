/**
 * The fuzz run against a running platform: setup (two tenants, callers of every scope), a
 * coverage pass over every operation of the document, Keyway's probes (grants, every secret after
 * a revoke, sizes at the bus's edge, cross-tenant ids and references, a request without Host), then
 * random stateful sequences until the request budget is spent. Every answer is judged by
 * checks.mjs; the run collects failures and never stops at the first.
 */
import fc from 'fast-check';
import { classify, judge } from './checks.mjs';
import { CEILING, DEFAULT_CEILING, holds, keysSequence, probeEscalation, probeSecrets } from './keys.mjs';
import { Validators, dialectOf, fetchDocument, operationsOf } from './openapi.mjs';
import { probeHardening, probeNoHost, probeReferences, probeSizes } from './probes.mjs';
import { BODY_MUTATIONS, RAW_BODIES, Rng, deepBody, mutate, sampleValid, setAt, slotsOf, unicodeString } from './values.mjs';

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** A path segment as the client sends it; a segment of dots would be resolved away by the URL parser. */
function segment(value) {
  const s = encodeURIComponent(String(value).toWellFormed());
  return /^(\.|%2e)+$/i.test(s) ? `${s}x` : s;
}

/** What the report shows of a body: long strings and deep nesting summarised, so it stays readable. */
function preview(value, budget = 1200) {
  const walk = (v, depth) => {
    if (typeof v === 'string') return v.length > 80 ? `${v.slice(0, 24)}…«${v.length} chars»` : v;
    if (Array.isArray(v)) return v.length > 4 ? [...v.slice(0, 2).map((x) => walk(x, depth + 1)), `«…${v.length} items»`] : v.map((x) => walk(x, depth + 1));
    if (isObject(v)) {
      if (depth > 6) return `«nested ${1 + depthBelow(v)} more levels»`;
      const entries = Object.entries(v);
      const out = {};
      for (const [k, x] of entries.slice(0, 12)) out[k.length > 40 ? `${k.slice(0, 20)}…` : k] = walk(x, depth + 1);
      if (entries.length > 12) out['«more keys»'] = entries.length - 12;
      return out;
    }
    return v;
  };
  const text = JSON.stringify(walk(value, 0));
  return text === undefined ? '' : text.length > budget ? `${text.slice(0, budget)}…` : text;
}
function depthBelow(v) {
  let d = 0;
  for (let n = v; isObject(n) && Object.keys(n).length === 1; n = Object.values(n)[0]) d++;
  return d;
}

export class Fuzzer {
  constructor({ baseUrl, adminUrl, adminToken, seed, requests, concurrency = 4, timeoutMs = 30_000, trace = false }) {
    this.trace = trace ? [] : undefined;
    this.baseUrl = baseUrl.replace(/\/$/, '');
    this.adminUrl = (adminUrl ?? baseUrl).replace(/\/$/, '');
    this.operator = { label: 'operator', authorization: `Bearer ${adminToken}`, operator: true, scopes: [] };
    this.seed = seed;
    this.budget = requests;
    this.concurrency = concurrency;
    this.timeoutMs = timeoutMs;
    this.v = new Validators();
    this.failures = [];
    this.notes = [];
    this.sent = 0;
    this.byStatus = {};
    this.byExpectation = {};
    this.perOp = new Map();
    this.tenants = {};
    this.started = Date.now();
  }

  // --- the document --------------------------------------------------------------------------

  async load() {
    this.doc = await fetchDocument(this.baseUrl);
    this.dialect = dialectOf(this.doc);
    this.ops = operationsOf(this.doc);
    for (const op of this.ops) this.perOp.set(op.id, { sent: 0, ok: 0, statuses: {} });
    this.creates = new Map();
    this.items = new Map();
    for (const op of this.ops) {
      if (op.method === 'POST' && !op.hasPathParams && op.body && Object.keys(op.responses).some((s) => s.startsWith('2'))) this.creates.set(op.collection, op);
    }
    for (const op of this.ops) {
      if (op.hasPathParams && this.creates.has(op.collection)) {
        if (!this.items.has(op.collection)) this.items.set(op.collection, []);
        this.items.get(op.collection).push(op);
      }
    }
  }

  opAt(method, path) {
    return this.ops.find((o) => o.method === method && o.path === path);
  }

  /** `account_id` → `/v1/accounts`: a body or query field that names another resource. */
  refCollection(name) {
    if (typeof name !== 'string' || !name.endsWith('_id')) return undefined;
    const plural = `${name.slice(0, -3)}s`;
    return [...this.creates.keys()].find((c) => c.split('/').pop() === plural && !c.startsWith('/admin/'));
  }

  isAdmin(op) {
    return op.security.kind === 'admin' || op.path.startsWith('/admin/');
  }

  // --- one request ---------------------------------------------------------------------------

  /**
   * Sends `req` for `op`, judges the answer and records it. `ctx.id`: the state of the path's
   * resource (`live`, `gone`, `foreign`, `unknown`); `ctx.refs`: `foreign` when the body names
   * another tenant's resource; `ctx.expect` overrides the derived expectation (the probes).
   */
  async send(op, req, ctx = {}) {
    const base = this.isAdmin(op) ? this.adminUrl : this.baseUrl;
    const path = op.path.replace(/\{([^}]+)\}/g, (_, name) => segment(req.params?.[name] ?? ''));
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(req.query ?? {})) for (const one of [v].flat()) qs.append(k, one);
    const query = qs.toString();
    const url = `${base}${path}${query ? `?${query}` : ''}`;
    const headers = { ...(req.headers ?? {}) };
    if (req.caller) headers.authorization = req.caller.authorization ?? `Bearer ${req.caller.secret}`;
    const bodyText = req.rawBody ?? (req.body !== undefined ? JSON.stringify(req.body) : undefined);
    if (bodyText !== undefined) headers['content-type'] = req.contentType ?? 'application/json';
    if (req.requestId) headers['x-request-id'] = req.requestId.value;
    req.bodyBytes = bodyText === undefined ? 0 : Buffer.byteLength(bodyText);

    const cls = classify(op, req, this.v);
    if (!ctx.refs) ctx = { ...ctx, ...this.references(op, req) };
    const expect = ctx.expect ?? this.expectation(op, req, cls, ctx);
    const t0 = Date.now();
    const answer = await this.fetch(op.method, url, headers, bodyText);
    this.record(op, answer, expect);
    this.track(op, req, answer);
    this.trace?.push({ op: op.id, family: ctx.family ?? 'valid', note: ctx.note, caller: req.caller?.label, expected: expect.kind, status: answer.status ?? answer.error, bytes: req.bodyBytes, replyBytes: answer.text?.length, ms: Date.now() - t0 });
    const failures = judge(op, req, answer, expect, this.v);
    for (const f of failures) {
      this.failures.push({
        op: op.id,
        kind: f.kind,
        message: f.message,
        family: ctx.family ?? 'valid',
        note: ctx.note,
        expected: expect.kind,
        request: {
          method: op.method,
          url: url.slice(base.length),
          base: this.isAdmin(op) ? 'admin' : 'public',
          caller: req.caller?.label ?? 'none',
          contentType: bodyText === undefined ? undefined : headers['content-type'],
          requestId: req.requestId?.value,
          bodyBytes: req.bodyBytes,
          body: req.rawBody !== undefined ? (req.rawBody.length > 300 ? `${JSON.stringify(req.rawBody.slice(0, 200))}… (${req.rawBody.length} chars)` : JSON.stringify(req.rawBody)) : req.body !== undefined ? preview(req.body) : undefined,
          classified: cls.valid ? (cls.uncertain.length > 0 ? `valid, but ${cls.uncertain.join('; ')}` : 'valid') : `invalid: ${cls.reasons.join('; ')}`,
        },
        response: answer.error ? { error: answer.error } : { status: answer.status, body: answer.text.length > 400 ? `${answer.text.slice(0, 400)}… (${answer.text.length} chars)` : answer.text },
      });
    }
    return answer;
  }

  async fetch(method, url, headers, body) {
    this.sent++;
    try {
      const res = await fetch(url, { method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(this.timeoutMs) });
      const text = await res.text();
      const h = {};
      res.headers.forEach((v, k) => (h[k] = v));
      let json;
      if (/json/i.test(h['content-type'] ?? '') && text.length > 0) {
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
      }
      return { status: res.status, headers: h, text, json };
    } catch (err) {
      const timedOut = err?.name === 'TimeoutError';
      return { error: timedOut ? `no answer within ${this.timeoutMs} ms` : String(err?.cause ?? err), timedOut };
    }
  }

  record(op, answer, expect) {
    const s = this.perOp.get(op.id);
    s.sent++;
    const key = answer.error ? 'none' : String(answer.status);
    s.statuses[key] = (s.statuses[key] ?? 0) + 1;
    if (!answer.error && answer.status >= 200 && answer.status < 300) s.ok++;
    const cls = answer.error ? 'none' : `${String(answer.status)[0]}xx`;
    this.byStatus[cls] = (this.byStatus[cls] ?? 0) + 1;
    if (answer.status === 429) this.byStatus['429'] = (this.byStatus['429'] ?? 0) + 1;
    this.byExpectation[expect.kind] = (this.byExpectation[expect.kind] ?? 0) + 1;
  }

  /** The answer the document (and DESIGN's order: key, scope, input, state) allows for this request. */
  expectation(op, req, cls, ctx) {
    const caller = req.caller;
    // /auth/v1 answers by the session cookie and the credentials, which this fuzzer does not
    // model: the document's own checks only (test/e2e/sessions.e2e.ts holds their promises).
    if (op.path.startsWith('/auth/')) return { kind: 'any' };
    if (op.security.kind === 'admin' && !caller?.operator) return { kind: 'unauthorized', why: 'no operator token' };
    if (op.security.kind === 'apiKey') {
      if (!caller || caller.operator || caller.invalid) return { kind: 'unauthorized', why: caller ? `caller ${caller.label}` : 'no key' };
      if (op.security.scopes.length > 0 && !holds(caller.scopes, op.security.scopes)) {
        return { kind: 'forbidden', why: `${caller.label} lacks ${op.security.scopes.join(' or ')}`, allow: (s, code) => s === 403 && code === 'insufficient_scope' };
      }
    }
    if (!cls.valid) return { kind: 'client_error', why: cls.reasons.join('; ') };
    if (cls.uncertain.length > 0) return { kind: 'any' };
    // A PUT by the customer's own id creates what it does not find (an upsert): no id is unknown
    // to it, and another tenant's external id is a new record of this tenant's.
    const upsert = op.method === 'PUT';
    if (ctx.id === 'foreign' && !upsert) return { kind: 'not_found', why: "another tenant's id", onAccept: 'cross_tenant_leak' };
    if ((ctx.id === 'gone' || ctx.id === 'unknown') && !upsert) return { kind: 'not_found', why: ctx.id === 'gone' ? 'deleted before' : 'an id nobody created' };
    if (ctx.refs === 'foreign' || ctx.refs === 'unknown') return { kind: 'client_error', why: ctx.refsWhy, onAccept: `${ctx.refs}_reference_accepted` };
    const keysOp = op.collection === '/v1/keys';
    return {
      kind: 'success',
      allow: (s, code) =>
        (s === 409 && WRITE_METHODS.has(op.method)) ||
        // DESIGN's grants: a key this caller may not give or touch (other mode, scopes it lacks, above the ceiling).
        (s === 403 && code === 'forbidden' && keysOp) ||
        (s === 403 && code === 'insufficient_scope' && keysOp && !caller?.omnipotent) ||
        (s === 404 && ctx.id === 'maybe') ||
        // DESIGN: DELETE /v1/test-data takes a test key (or a session) only; the run's keys are live.
        (s === 403 && code === 'forbidden' && op.path === '/v1/test-data') ||
        // The audit trail is fed from the event stream: a key made a moment ago may have none yet.
        (s === 404 && op.path.endsWith('/logs') && this.eventual(op)),
    };
  }

  /**
   * Every resource the run made, with its tenant, until it is deleted: a body that names one that
   * is not (another tenant's, a deleted one, a string a mutation made up) is a semantic 400 or 404.
   */
  track(op, req, answer) {
    if (!(answer.status >= 200 && answer.status < 300)) return;
    this.live ??= new Map();
    if (this.creates.get(op.collection) === op) {
      const id = this.idOf(answer.json);
      if (id) this.live.set(id, req.caller?.tenant);
    } else if (op.method === 'DELETE' && op.hasPathParams) {
      for (const v of Object.values(req.params ?? {})) this.live.delete(v);
    }
  }

  /** `{refs, refsWhy}` when the body names a resource the caller's tenant does not have. */
  references(op, req) {
    if (!op.body?.schema || !isObject(req.body) || !req.caller?.tenant || !this.live) return {};
    for (const slot of slotsOf(op.body.schema, req.body, this.v)) {
      const name = slot.path[slot.path.length - 1];
      if (!slot.present || typeof slot.value !== 'string' || !this.refCollection(name)) continue;
      const owner = this.live.get(slot.value);
      if (owner === undefined) return { refs: 'unknown', refsWhy: `${slot.path.join('.')} names no live resource` };
      if (owner !== req.caller.tenant) return { refs: 'foreign', refsWhy: `${slot.path.join('.')} names another tenant's resource` };
    }
    return {};
  }

  /** Counts an answer allowed only because that view is eventually consistent (reported in the notes). */
  eventual(op) {
    this.eventualAnswers ??= {};
    this.eventualAnswers[op.id] = (this.eventualAnswers[op.id] ?? 0) + 1;
    return true;
  }

  // --- building requests ---------------------------------------------------------------------

  callerFor(op, tenant) {
    if (this.isAdmin(op)) return this.operator;
    if (op.security.kind === 'none') return undefined;
    return this.tenants[tenant].worker;
  }

  /**
   * A request the document calls valid, with references to live resources of `tenant`. `full`:
   * always with a body that changes something, for probes about the caller or the id, not the body.
   */
  buildValid(op, rng, tenant, id, { full = false } = {}) {
    const req = { caller: this.callerFor(op, tenant), params: {}, query: {} };
    for (const p of op.parameters) {
      if (p.in === 'path') req.params[p.name] = p.name === 'id' && id !== undefined ? id : String(sampleValid(p.schema ?? { type: 'string' }, rng, this.v));
      else if (p.in === 'query' && (p.required || rng.chance(0.35))) {
        let v = sampleValid(p.schema ?? { type: 'string' }, rng, this.v);
        const col = this.refCollection(p.name);
        const pool = col && this.pools?.[tenant]?.[col];
        if (pool?.length && rng.chance(0.7)) v = rng.pick(pool);
        if (v !== undefined && v !== null) req.query[p.name] = String(v);
      } else if (p.in === 'header' && p.name.toLowerCase() === 'x-request-id' && rng.chance(0.25)) {
        req.requestId = this.requestId(p, rng);
      }
    }
    if (op.body?.schema && (full || op.body.required || rng.chance(0.9))) {
      for (let i = 0; i < 8; i++) {
        req.body = this.patchRefs(sampleValid(op.body.schema, rng, this.v), op.body.schema, tenant, rng);
        if (!full || !isObject(req.body) || Object.keys(req.body).length > 0) break;
      }
    }
    return req;
  }

  /** Every `<resource>_id` in the body points at a live resource of the tenant (or null, or nothing). */
  patchRefs(body, schema, tenant, rng, pools = this.pools?.[tenant]) {
    let out = body;
    for (const slot of slotsOf(schema, body, this.v)) {
      const name = slot.path[slot.path.length - 1];
      const col = this.refCollection(name);
      // A null reference too: unlinking may leave a resource the state refuses (a journey needs a visitor).
      if (!col || !slot.present) continue;
      const pool = pools?.[col] ?? [];
      let value;
      if (pool.length > 0) value = rng.pick(pool);
      else if (this.v.valid(slot.schema, null) || (slot.parent?.properties?.[name] && this.v.valid(slot.parent.properties[name], null))) value = null;
      out = setAt(out, slot.path, value);
    }
    return out;
  }

  requestId(param, rng) {
    let value;
    if (rng.chance(0.6)) value = String(sampleValid(param.schema ?? { type: 'string' }, rng, this.v));
    else value = rng.draw(fc.string({ unit: fc.constantFrom(...'abcXYZ019-_.:/=+ ~!@#$%^&*()[]{}|;,<>?'), minLength: 1, maxLength: 60 }));
    if (rng.chance(0.15)) value = 'r'.repeat(rng.pick([200, 201, 300]));
    // Header values are visible ASCII (and inner spaces): what the fuzzer sends must reach the server as is.
    value = value.replace(/[^\x20-\x7e]/g, '').trim() || 'fuzz';
    return { value, valid: this.v.stringErrors(param.schema ?? {}, value).length === 0 };
  }

  /** A mutation of a valid request, of a family that applies to this operation (`where`: body, rest, any). */
  buildMutation(op, rng, tenant, id, where = 'any') {
    // A full body, so a mutation of the path or query is the only thing wrong with the request.
    const req = this.buildValid(op, rng, tenant, id, { full: true });
    const families = [];
    if (op.body?.schema && where !== 'rest') families.push(...BODY_MUTATIONS.map((f) => [f, 3]), ['raw_body', 2], ['content_type', 1], ['no_body', 1]);
    if (where !== 'body') {
      const query = op.parameters.filter((p) => p.in === 'query');
      if (query.length > 0) families.push(['query_wrong_type', 2], ['query_boundary', 2], ['query_nul', 2], ['query_unknown', 1], ['query_repeat', 1], ['query_long', 1], ['page_window', 1]);
      if (op.hasPathParams) families.push(['path_too_long', 1], ['path_nul', 2], ['path_unicode', 2], ['path_unknown', 1]);
      families.push(['request_id', 1]);
    }
    for (let attempt = 0; attempt < 6; attempt++) {
      const family = rng.weighted(families);
      const out = this.applyFamily(family, op, req, rng, tenant);
      if (out) return { req: out.req, family, note: out.note, id: out.id };
    }
    return { req, family: 'valid', note: 'no mutation applied', id: undefined };
  }

  applyFamily(family, op, base, rng, tenant, opts = {}) {
    const req = { ...base, params: { ...base.params }, query: { ...base.query } };
    const queryParams = op.parameters.filter((p) => p.in === 'query');
    const pickQuery = (filter = () => true) => {
      const list = queryParams.filter(filter);
      return list.length > 0 ? rng.pick(list) : undefined;
    };
    switch (family) {
      case 'raw_body':
        req.body = undefined;
        req.rawBody = rng.pick(RAW_BODIES);
        return { req, note: `raw body ${JSON.stringify(req.rawBody)}` };
      case 'content_type':
        req.body ??= sampleValid(op.body.schema, rng, this.v);
        req.contentType = rng.pick(['text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x']);
        return { req, note: `Content-Type ${req.contentType}` };
      case 'no_body':
        req.body = undefined;
        return { req, note: 'no body' };
      case 'query_wrong_type': {
        const p = pickQuery();
        if (!p) return undefined;
        req.query[p.name] = rng.pick(['abc', '1.5', '', '-', '1e3', 'true', '[]', '０']);
        return { req, note: `${p.name}=${JSON.stringify(req.query[p.name])}` };
      }
      case 'query_boundary': {
        const p = pickQuery((q) => q.schema && (q.schema.maximum !== undefined || q.schema.minimum !== undefined || q.schema.maxLength !== undefined));
        if (!p) return undefined;
        const s = p.schema;
        const edges = [];
        if (s.maximum !== undefined) edges.push(String(s.maximum), String(s.maximum + 1));
        if (s.minimum !== undefined) edges.push(String(s.minimum), String(s.minimum - 1));
        if (s.maxLength !== undefined) edges.push('q'.repeat(s.maxLength), 'q'.repeat(s.maxLength + 1));
        req.query[p.name] = rng.pick(edges);
        return { req, note: `${p.name} of ${req.query[p.name].length > 20 ? `${req.query[p.name].length} chars` : req.query[p.name]}` };
      }
      case 'query_nul': {
        const p = pickQuery();
        if (!p) return undefined;
        req.query[p.name] = `${req.query[p.name] ?? 'a'}\u0000`;
        return { req, note: `NUL in ${p.name}` };
      }
      case 'query_unknown': {
        const name = rng.draw(fc.string({ minLength: 1, maxLength: 12 }));
        if (queryParams.some((p) => p.name === name)) return undefined;
        req.query[name] = rng.draw(fc.string({ maxLength: 12 }));
        return { req, note: `unknown parameter ${JSON.stringify(name)}` };
      }
      case 'query_repeat': {
        const p = pickQuery();
        if (!p) return undefined;
        const one = req.query[p.name] ?? String(sampleValid(p.schema ?? { type: 'string' }, rng, this.v));
        req.query[p.name] = [one, one];
        return { req, note: `${p.name} twice` };
      }
      case 'query_long': {
        // 8 KB: long, yet within what an HTTP server takes in a request line (16 KB in Node).
        const p = pickQuery((q) => q.schema?.type === 'string');
        if (!p) return undefined;
        req.query[p.name] = rng.draw(unicodeString).padEnd(8_000, 'x');
        return { req, note: `${p.name} of 8,000 characters` };
      }
      case 'page_window': {
        if (!queryParams.some((p) => p.name === 'page') || !queryParams.some((p) => p.name === 'pageSize')) return undefined;
        req.query.page = String(rng.pick([201, 1000, 2 ** 31, Number.MAX_SAFE_INTEGER]));
        req.query.pageSize = '50';
        return { req, note: `page ${req.query.page} × pageSize 50` };
      }
      case 'path_too_long':
      case 'path_nul':
      case 'path_unicode':
      case 'path_unknown': {
        const p = op.parameters.find((x) => x.in === 'path');
        const max = p?.schema?.maxLength ?? 100;
        const known = req.params[p.name] ?? 'x';
        if (family === 'path_too_long') req.params[p.name] = known.padEnd(max + 1 + rng.int(200), 'z');
        else if (family === 'path_nul') req.params[p.name] = `${known}\u0000`;
        else if (family === 'path_unicode') req.params[p.name] = rng.draw(unicodeString);
        else req.params[p.name] = `${known.split('_')[0]}_${rng.draw(fc.stringMatching(/^[a-z0-9]{20}$/))}`;
        return { req, note: `${p.name} ${JSON.stringify(req.params[p.name].length > 60 ? `${req.params[p.name].slice(0, 20)}…(${req.params[p.name].length})` : req.params[p.name])}`, id: 'unknown' };
      }
      case 'request_id': {
        const p = op.parameters.find((x) => x.in === 'header' && x.name.toLowerCase() === 'x-request-id');
        if (!p) return undefined;
        req.requestId = this.requestId(p, rng);
        return { req, note: `X-Request-Id ${JSON.stringify(req.requestId.value.slice(0, 60))}` };
      }
      default: {
        const body = req.body ?? this.patchRefs(sampleValid(op.body.schema, rng, this.v), op.body.schema, tenant, rng);
        const m = mutate(family, body, op.body.schema, rng, this.v, opts);
        if (!m) return undefined;
        if (m.deep) {
          req.body = undefined;
          req.rawBody = deepBody(m.value, m.deep.depth);
          req.rawReason = `JSON nested ${m.deep.depth} levels deep at ${m.deep.at.join('.') || '(body)'}`;
        } else req.body = m.value;
        return { req, note: m.note };
      }
    }
  }

  // --- state: tenants, callers, resources ----------------------------------------------------

  /** An operator call of the setup, waiting out the admin listener's own rate limit if it bites. */
  async adminSetupCall(op, req, ctx) {
    for (let attempt = 0; ; attempt++) {
      const r = await this.send(op, req, ctx);
      if (r.status !== 429 || attempt >= 3) return r;
      const wait = Math.min(65, Number(r.headers['retry-after']) || 5);
      this.notes.push(`the operator API answered 429 during setup; waited ${wait} s`);
      await new Promise((done) => setTimeout(done, wait * 1000));
    }
  }

  async createTenant(label) {
    const op = this.opAt('POST', '/admin/v1/tenants');
    if (!op) throw new Error('the document has no POST /admin/v1/tenants: the fuzzer needs it to create its tenants');
    const name = `fuzz ${label} ${this.seed}`;
    let r = await this.adminSetupCall(op, { caller: this.operator, body: { name, rate_limit_ceiling: CEILING } }, { family: 'setup' });
    if (r.status !== 201) {
      if (!this.notes.some((n) => n.startsWith('rate_limit_ceiling'))) this.notes.push(`rate_limit_ceiling refused (${r.status ?? r.error}): tenants run on the default ceiling`);
      r = await this.adminSetupCall(op, { caller: this.operator, body: { name } }, { family: 'setup' });
    } else this.ceiling = true;
    if (r.status !== 201) throw new Error(`could not create tenant ${label}: ${r.status ?? r.error} ${r.text ?? ''}`);
    const root = r.json.root_key;
    return { id: r.json.tenant.id, root: { label: `root ${label}`, secret: root.key, scopes: root.scopes, omnipotent: true, env: 'live', id: root.id, tenant: label } };
  }

  /** A key with high limits (the ceiling asked for, else DESIGN's default ceiling, else defaults). */
  async createCaller(by, label, scopes, extra = {}) {
    const op = this.opAt('POST', '/v1/keys');
    for (const limits of [this.keyLimits ?? CEILING, DEFAULT_CEILING, undefined]) {
      const body = { name: `fuzz ${label} ${this.seed}`, scopes, ...(limits ? { rate_limit: limits } : {}), ...extra };
      const r = await this.send(op, { caller: by, body }, { family: 'setup', expect: { kind: 'any' } });
      if (r.status === 201) {
        this.keyLimits ??= limits;
        if (limits !== CEILING && !this.notes.some((n) => n.startsWith('key limits'))) this.notes.push(`key limits: ${limits ? 'the default ceiling' : 'the defaults'} (higher ones were refused)`);
        return { label, secret: r.json.key, scopes, env: r.json.environment, id: r.json.id, omnipotent: scopes.length === this.allScopes.length, tenant: by.tenant };
      }
      if (r.status !== 403 && r.status !== 400) return { failed: `${r.status ?? r.error} ${r.text?.slice(0, 200) ?? ''}` };
    }
    return { failed: 'every limit refused' };
  }

  async setup() {
    await this.load();
    const rng = new Rng(this.seed);
    const a = await this.createTenant('A');
    const b = await this.createTenant('B');
    this.allScopes = a.root.scopes;
    for (const [label, t] of [['A', a], ['B', b]]) {
      const worker = await this.createCaller(t.root, `worker ${label} (all scopes)`, this.allScopes);
      if (worker.failed) throw new Error(`could not create the worker key of tenant ${label}: ${worker.failed}`);
      this.tenants[label] = { id: t.id, root: t.root, worker };
    }
    const A = this.tenants.A;
    A.narrow = [];
    for (const scopes of [[], ...this.allScopes.map((s) => [s])]) {
      const k = await this.createCaller(A.worker, `narrow [${scopes.join(',')}]`, scopes);
      if (!k.failed) A.narrow.push(k);
    }
    A.testWorker = await this.testCaller(A);

    // Stable resources, never deleted: references in bodies and queries point at them.
    this.pools = { A: {}, B: {} };
    for (const col of this.creationOrder()) {
      if (col.startsWith('/admin/')) continue;
      for (const [tenant, n] of [['A', 2], ['B', 1]]) {
        this.pools[tenant][col] = [];
        for (let i = 0; i < n; i++) {
          const made = await this.createValid(col, tenant, rng);
          if (made) this.pools[tenant][col].push(made.id);
        }
      }
    }
  }

  /**
   * A test-mode key with every scope: a live key may create live keys only (DESIGN's grants), so
   * it comes from a test root key the operator issues, where the document has that route.
   */
  async testCaller(t) {
    const rootKey = this.ops.find((o) => o.method === 'POST' && /^\/admin\/v1\/tenants\/\{[^}]+\}\/root-key$/.test(o.path));
    let by = t.worker;
    if (rootKey) {
      const param = rootKey.parameters.find((p) => p.in === 'path')?.name ?? 'id';
      const r = await this.adminSetupCall(rootKey, { caller: this.operator, params: { [param]: t.id }, body: { environment: 'test' } }, { family: 'setup' });
      const root = r.json?.root_key;
      if (r.status >= 200 && r.status < 300 && typeof root?.key === 'string') by = { label: 'test root A', secret: root.key, scopes: root.scopes ?? this.allScopes, omnipotent: true, env: 'test', tenant: t.worker.tenant };
    }
    const test = await this.createCaller(by, 'test-mode worker A', this.allScopes, { environment: 'test' });
    if (!test.failed) return test;
    this.notes.push(`no test-mode caller${rootKey ? '' : ' (the document has no root-key route)'}: ${test.failed.slice(0, 100)}`);
    return undefined;
  }

  /** Collections ordered so that what a body references exists first (accounts before contacts). */
  creationOrder() {
    const deps = new Map();
    for (const [col, op] of this.creates) {
      const names = Object.keys(op.body?.schema?.properties ?? {});
      deps.set(col, names.map((n) => this.refCollection(n)).filter((c) => c && c !== col));
    }
    const out = [];
    const visit = (c, stack = []) => {
      if (out.includes(c) || stack.includes(c)) return;
      for (const d of deps.get(c) ?? []) visit(d, [...stack, c]);
      out.push(c);
    };
    for (const c of deps.keys()) visit(c);
    return out;
  }

  idOf(json) {
    if (!isObject(json)) return undefined;
    if (typeof json.id === 'string') return json.id;
    for (const v of Object.values(json)) if (isObject(v) && typeof v.id === 'string') return v.id;
    return undefined;
  }

  /** Creates one resource with a valid body (a few tries: a generated email may already exist). */
  async createValid(col, tenant, rng, family = 'setup') {
    const op = this.creates.get(col);
    for (let attempt = 0; attempt < 6; attempt++) {
      const req = this.buildValid(op, rng, tenant);
      if (col === '/v1/keys' && isObject(req.body)) req.body.environment = this.tenants[tenant].worker.env;
      const r = await this.send(op, req, { family });
      if (r.status >= 200 && r.status < 300) {
        const id = this.idOf(r.json);
        if (id) return { id, json: r.json };
      }
    }
    this.notes.push(`could not create a resource at ${col} for tenant ${tenant}`);
    return undefined;
  }

  // --- the plan ------------------------------------------------------------------------------

  async run() {
    await this.setup();
    const master = new Rng(this.seed ^ 0x5eed);
    const tasks = [];
    for (const op of this.ops) tasks.push(['coverage', op]);
    tasks.push(['hardening'], ['escalation'], ['secrets', 'revoke'], ['secrets', 'disable'], ['secrets', 'rotate'], ['references'], ['sizes'], ['no_host']);
    let next = 0;
    const random = () => master.weighted([
      ['resource', 35],
      ['keys', 20],
      ['mutation', 30],
      ['probe', 15],
    ]);
    const lane = async () => {
      for (;;) {
        let task;
        if (next < tasks.length) task = tasks[next++];
        else if (this.sent < this.budget) task = [random()];
        else return;
        const rng = new Rng(master.int(2 ** 31));
        try {
          await this.task(task, rng);
        } catch (err) {
          this.notes.push(`task ${task[0]} ${task[1]?.id ?? task[1] ?? ''} stopped: ${err?.stack ?? err}`);
        }
      }
    };
    await Promise.all(Array.from({ length: this.concurrency }, lane));
    return this.result();
  }

  async task([kind, arg], rng) {
    switch (kind) {
      case 'coverage':
        return this.coverage(arg, rng);
      case 'hardening':
        return probeHardening(this, rng);
      case 'escalation':
        return probeEscalation(this, rng);
      case 'secrets':
        return probeSecrets(this, arg, rng);
      case 'references':
        return probeReferences(this, rng);
      case 'sizes':
        return probeSizes(this, rng);
      case 'no_host':
        return probeNoHost(this);
      case 'resource':
        return this.resourceSequence(rng);
      case 'keys':
        return keysSequence(this, rng);
      case 'mutation':
        return this.randomMutation(rng);
      case 'probe':
        return this.randomProbe(rng);
      default:
        throw new Error(`unknown task ${kind}`);
    }
  }

  /** An id for an item operation: a fresh resource when the call may destroy it, else a stable one. */
  async idFor(op, rng, tenant = 'A') {
    if (!op.hasPathParams) return {};
    if (!this.creates.has(op.collection)) return { id: undefined };
    const destructive = op.method === 'DELETE' || op.path.endsWith('/revoke') || op.path.endsWith('/root-key') || this.isAdmin(op);
    if (destructive || !this.pools[tenant][op.collection]?.length) {
      const made = await this.createValid(op.collection, tenant, rng, 'fixture');
      return { id: made?.id, fresh: true };
    }
    return { id: rng.pick(this.pools[tenant][op.collection]) };
  }

  /** Every operation: one valid call, one mutation, no key, a key without its scope, another tenant's id. */
  async coverage(op, rng) {
    const { id } = await this.idFor(op, rng);
    const state = (x) => (x ? 'live' : op.hasPathParams ? 'unknown' : undefined);
    await this.send(op, this.buildValid(op, rng, 'A', id), { id: state(id), family: 'valid' });
    // One mutation of the body, one of the rest (path, query, headers), each where there is one.
    for (const onBody of [true, false]) {
      if (onBody && !op.body?.schema) continue;
      const target = op.method === 'DELETE' ? (await this.idFor(op, rng)).id : id;
      const m = this.buildMutation(op, rng, 'A', target, onBody ? 'body' : 'rest');
      await this.send(op, m.req, { id: m.id ?? state(target), family: m.family, note: m.note });
    }
    const target = op.method === 'DELETE' ? (await this.idFor(op, rng)).id : id;
    if (op.security.kind !== 'none') {
      const req = this.buildValid(op, rng, 'A', target, { full: true });
      req.caller = undefined;
      await this.send(op, req, { family: 'no_key', id: 'live' });
      const wrong = { ...this.buildValid(op, rng, 'A', target, { full: true }), caller: this.isAdmin(op) ? this.tenants.A.worker : { ...this.operator, label: 'operator token on /v1' } };
      await this.send(op, wrong, { family: 'wrong_credential', id: 'live' });
    }
    if (op.security.kind === 'apiKey' && op.security.scopes.length > 0) {
      const lacking = this.tenants.A.narrow.filter((k) => !holds(k.scopes, op.security.scopes));
      if (lacking.length > 0) {
        const req = { ...this.buildValid(op, rng, 'A', target, { full: true }), caller: rng.pick(lacking) };
        await this.send(op, req, { family: 'missing_scope', id: 'live' });
      }
    }
    const foreign = op.hasPathParams && this.pools.B[op.collection]?.[0];
    if (foreign && !this.isAdmin(op)) await this.send(op, this.buildValid(op, rng, 'A', foreign, { full: true }), { id: 'foreign', family: 'other_tenant_id' });
  }

  async resourceSequence(rng) {
    const cols = [...this.items.keys()].filter((c) => !c.startsWith('/admin/') && c !== '/v1/keys');
    if (cols.length === 0) return;
    const col = rng.pick(cols);
    const made = await this.createValid(col, 'A', rng, 'sequence');
    if (!made) return;
    const ops = this.items.get(col);
    const steps = rng.draw(fc.array(fc.record({ op: fc.nat(), mutate: fc.boolean() }), { minLength: 1, maxLength: 6 }));
    let gone = false;
    for (const step of steps) {
      const op = ops[step.op % ops.length];
      if (step.mutate) {
        const m = this.buildMutation(op, rng, 'A', made.id);
        const r = await this.send(op, m.req, { id: m.id ?? (gone ? 'gone' : 'live'), family: m.family, note: m.note });
        if (op.method === 'DELETE' && r.status >= 200 && r.status < 300 && m.id === undefined) gone = true;
      } else {
        const r = await this.send(op, this.buildValid(op, rng, 'A', made.id, { full: true }), { id: gone ? 'gone' : 'live', family: 'sequence' });
        if (op.method === 'DELETE' && r.status >= 200 && r.status < 300) gone = true;
      }
    }
    const del = ops.find((o) => o.method === 'DELETE');
    const get = ops.find((o) => o.method === 'GET' && o.path === `${col}/{id}`);
    if (!gone && del && rng.chance(0.5)) {
      const r = await this.send(del, this.buildValid(del, rng, 'A', made.id), { id: 'live', family: 'sequence' });
      gone = r.status >= 200 && r.status < 300;
    }
    if (gone && get) await this.send(get, this.buildValid(get, rng, 'A', made.id, { full: true }), { id: 'gone', family: 'after_delete' });
  }

  async randomMutation(rng) {
    const op = rng.pick(this.ops);
    const { id } = await this.idFor(op, rng);
    const m = this.buildMutation(op, rng, 'A', id);
    await this.send(op, m.req, { id: m.id ?? (id ? 'live' : op.hasPathParams ? 'unknown' : undefined), family: m.family, note: m.note });
  }

  async randomProbe(rng) {
    const ops = this.ops.filter((o) => o.security.kind !== 'none');
    const op = rng.pick(ops);
    const kind = rng.pick(['no_key', 'bad_key', 'missing_scope', 'other_tenant_id', 'narrow_caller']);
    if (kind === 'other_tenant_id' && (!op.hasPathParams || this.isAdmin(op))) return;
    const { id } = kind === 'other_tenant_id' ? { id: this.pools.B[op.collection]?.[0] } : await this.idFor(op, rng);
    const req = this.buildValid(op, rng, 'A', id, { full: true });
    if (kind === 'no_key') req.caller = undefined;
    else if (kind === 'bad_key') {
      const bad = rng.pick([`Bearer kw_live_abcdefgh_${'0'.repeat(32)}AAAAAA`, 'Bearer ', 'Basic dXNlcjpwYXNz', `Bearer ${this.tenants.A.worker.secret.slice(0, -1)}X`, 'bearer', `Bearer ${'k'.repeat(4000)}`]);
      req.caller = { label: `bad credential ${JSON.stringify(bad.slice(0, 30))}`, authorization: bad, invalid: true, scopes: [] };
      if (this.isAdmin(op)) req.caller.operator = false;
    } else if ((kind === 'missing_scope' || kind === 'narrow_caller') && op.security.kind === 'apiKey') {
      const pool = this.tenants.A.narrow.filter((k) => (kind === 'missing_scope' ? !holds(k.scopes, op.security.scopes) : holds(k.scopes, op.security.scopes)));
      if (pool.length === 0) return;
      req.caller = rng.pick(pool);
    } else if (kind === 'other_tenant_id' && !id) return;
    await this.send(op, req, { id: kind === 'other_tenant_id' ? 'foreign' : id ? 'live' : undefined, family: kind });
  }

  // --- keys ----------------------------------------------------------------------------------

  // --- the result ----------------------------------------------------------------------------

  result() {
    for (const [id, n] of Object.entries(this.eventualAnswers ?? {})) {
      this.notes.push(`${id} answered 404 ${n}× for a key that exists (the trail is built from the event stream, so a new key may have none yet): not counted as failures`);
    }
    const groups = new Map();
    for (const f of this.failures) {
      const key = `${f.kind}\u0000${f.op}`;
      if (!groups.has(key)) groups.set(key, { kind: f.kind, op: f.op, count: 0, families: {}, example: f });
      const g = groups.get(key);
      g.count++;
      g.families[f.family] = (g.families[f.family] ?? 0) + 1;
    }
    const ops = [...this.perOp.entries()].map(([id, s]) => ({ id, ...s }));
    return {
      seed: this.seed,
      baseUrl: this.baseUrl,
      document: { openapi: this.doc?.openapi, dialect: this.dialect?.dialect, dialectDeclared: this.dialect?.declared },
      ceiling: this.ceiling === true,
      operations: {
        total: ops.length,
        covered: ops.filter((o) => o.sent > 0).length,
        with2xx: ops.filter((o) => o.ok > 0).length,
        missing: ops.filter((o) => o.sent === 0).map((o) => o.id),
        without2xx: ops.filter((o) => o.sent > 0 && o.ok === 0).map((o) => o.id),
        list: ops,
      },
      requests: { sent: this.sent, byStatus: this.byStatus, byExpectation: this.byExpectation },
      failures: { count: this.failures.length, groups: [...groups.values()].sort((a, b) => a.kind.localeCompare(b.kind) || a.op.localeCompare(b.op)), all: this.failures },
      notes: this.notes,
      durationMs: Date.now() - this.started,
      ...(this.trace ? { trace: this.trace } : {}),
    };
  }
}
