/**
 * What a request is (valid or not, by the document and by DESIGN's size rules) and whether its
 * answer keeps the document's promises.
 */
import { depthOf, hasLoneSurrogate, hasNul, isFreeForm, slotsOf } from './values.mjs';

/**
 * DESIGN's "Sizes" rules, which JSON Schema cannot say (a serialised size, a nesting depth, a
 * product of two parameters) or which hold for every string (no NUL). The fuzzer stays clear of
 * each limit's exact edge (16 KiB, 32 levels) where two honest implementations may count
 * differently: its sizes are well below or well above.
 */
const SIZES = {
  freeFormBytes: 16 * 1024,
  freeFormDepth: 32,
  bodyBytes: 1024 * 1024,
  // Bodies this close to 1 MiB may or may not fit the bus: any answer but a 5xx is right.
  busBand: [1_040_000, 1024 * 1024],
  pageWindow: 10_000,
};

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The schema default of a parameter, as the server would apply it. */
const defaultOf = (op, name) => op.parameters.find((p) => p.name === name && p.in === 'query')?.schema?.default;

/**
 * `{valid, reasons, uncertain}`: reasons why the request is invalid (empty: valid), and what makes
 * its right answer unknowable from the document (then any answer but a 5xx is accepted).
 */
export function classify(op, req, validators) {
  const reasons = [];
  const uncertain = [];
  for (const p of op.parameters) {
    if (p.in === 'path') {
      const v = req.params?.[p.name];
      if (v === undefined) reasons.push(`path parameter ${p.name} missing`);
      else {
        for (const e of validators.stringErrors(p.schema ?? {}, v)) reasons.push(`path ${p.name}: ${e}`);
        if (v.includes('\u0000')) reasons.push(`NUL in path parameter ${p.name}`);
      }
    } else if (p.in === 'query') {
      const v = req.query?.[p.name];
      if (v === undefined) {
        if (p.required) reasons.push(`query parameter ${p.name} missing`);
        continue;
      }
      if (Array.isArray(v) && !(p.schema?.type === 'array')) reasons.push(`query ${p.name} repeated`);
      else for (const e of validators.stringErrors(p.schema ?? {}, v)) reasons.push(`query ${p.name}: ${e}`);
      if ([v].flat().some((s) => s.includes('\u0000'))) reasons.push(`NUL in query parameter ${p.name}`);
    }
  }
  for (const name of Object.keys(req.query ?? {})) {
    if (!op.parameters.some((p) => p.in === 'query' && p.name === name)) uncertain.push(`undeclared query parameter ${JSON.stringify(name)}`);
  }
  const page = Number(req.query?.page ?? defaultOf(op, 'page'));
  const pageSize = Number(req.query?.pageSize ?? defaultOf(op, 'pageSize'));
  // DESIGN's page window (400 beyond, naming `after`) comes with cursors, after issue 8: until then
  // either answer is right, as long as it is not a 5xx.
  if (Number.isFinite(page) && Number.isFinite(pageSize) && page * pageSize > SIZES.pageWindow) uncertain.push(`page × pageSize = ${page * pageSize} > ${SIZES.pageWindow}`);
  // A cursor is opaque: only a next_cursor of the same list and filters is one (any other is a
  // 400 naming after), and `page` beside it is a 400 too. The fuzzer makes its own up.
  if (req.query?.after !== undefined) uncertain.push('an after cursor not taken from a next_cursor');

  const sendsBody = req.rawBody !== undefined || req.body !== undefined;
  if (!op.body) {
    if (sendsBody) uncertain.push('a body the operation does not take');
  } else if (!sendsBody) {
    if (op.body.required) reasons.push('body missing');
  } else {
    const type = (req.contentType ?? 'application/json').split(';')[0].trim().toLowerCase();
    if (!op.body.types.includes(type)) reasons.push(`content type ${type}`);
    if (req.rawBody !== undefined) reasons.push(req.rawReason ?? 'body is not the JSON the operation takes');
    else if (op.body.schema) {
      for (const e of validators.errors(op.body.schema, req.body).slice(0, 3)) reasons.push(`body ${e}`);
      if (hasNul(req.body)) reasons.push('NUL in the body');
      // Stored with a replacement character or refused with a 400: both are fair, a 500 is not.
      if (hasLoneSurrogate(req.body)) uncertain.push('a lone surrogate in a string');
      // Clearing a field is for the resource's state to allow (a journey keeps a contact or an anonymous id).
      if (op.method === 'PATCH' && isObject(req.body) && Object.values(req.body).some((v) => v === null)) uncertain.push('a PATCH that clears a field');
      for (const slot of slotsOf(op.body.schema, req.body, validators)) {
        if (!slot.present || !isObject(slot.value) || !isFreeForm(slot.schema)) continue;
        // The document's own budget where it states one (`x-max-bytes`, `x-max-depth`), else DESIGN's.
        const maxBytes = slot.schema['x-max-bytes'] ?? SIZES.freeFormBytes;
        const maxDepth = slot.schema['x-max-depth'] ?? SIZES.freeFormDepth;
        const bytes = Buffer.byteLength(JSON.stringify(slot.value));
        const depth = depthOf(slot.value);
        if (bytes > maxBytes) reasons.push(`free-form ${slot.path.join('.')} is ${bytes} bytes > ${maxBytes}`);
        if (depth > maxDepth) reasons.push(`free-form ${slot.path.join('.')} is ${depth} levels deep > ${maxDepth}`);
      }
    }
  }
  // The gateway's JSON parser refuses any body nested deeper than 64 levels (DESIGN's conventions).
  if (isObject(req.body) && depthOf(req.body) > 64) reasons.push(`body nested ${depthOf(req.body)} levels deep > 64`);
  if (req.bodyBytes > SIZES.bodyBytes) reasons.push(`body of ${req.bodyBytes} bytes > 1 MiB`);
  else if (req.bodyBytes >= SIZES.busBand[0]) uncertain.push(`body of ${req.bodyBytes} bytes, at the bus's edge`);
  return { valid: reasons.length === 0, reasons, uncertain };
}

const short = (text, n = 300) => (text.length > n ? `${text.slice(0, n)}… (${text.length} chars)` : text);

/**
 * Whether a documented header must be there: `required: true`; X-Request-Id, which DESIGN puts
 * on every answer; and on a 2xx every header the document does not call optional
 * (`required: false`), since a success has been through every step (key, limits). On errors
 * the document may describe headers that come only from some steps ("present when the call was
 * counted against the key"): there they are checked when present.
 */
function promised(lower, h, status) {
  if (h.required === true || lower === 'x-request-id') return true;
  return h.required !== false && status >= 200 && status < 300;
}

/** The documented answer for a status: exact, then `4XX`-style ranges, then `default`. */
function documented(op, status) {
  return op.responses[String(status)] ?? op.responses[`${String(status)[0]}XX`] ?? op.responses.default;
}

/**
 * Every way the answer breaks a promise. `expect.kind`:
 *  - success: 2xx, or what the state allows (`allow(status, code)`), never a 4xx the document
 *    rules out; a 429 is counted but not a failure;
 *  - client_error: any 4xx (an invalid request must not be accepted);
 *  - not_found: 404 (a deleted id, or another tenant's: existence is never revealed);
 *  - forbidden: 403 (a missing scope, or a grant the caller may not give);
 *  - unauthorized: 401;
 *  - any: the document's checks only.
 */
export function judge(op, sent, answer, expect, validators) {
  const failures = [];
  const add = (kind, message) => failures.push({ kind, message });
  if (answer.error) {
    // A server may refuse a body over its limit by closing the connection while it is still being
    // sent (the client then sees EPIPE or a reset, not the 413): a refusal all the same.
    if (!answer.timedOut && sent.bodyBytes > SIZES.bodyBytes) return failures;
    add(answer.timedOut ? 'timeout' : 'network_error', answer.error);
    return failures;
  }
  const { status } = answer;
  const code = isObject(answer.json) ? answer.json.code : undefined;
  if (status >= 500) add('server_error', `${status} ${short(answer.text)}`);

  const doc = documented(op, status);
  if (!doc) add('undocumented_status', `${status} is not documented for ${op.id} (it documents ${Object.keys(op.responses).join(', ')}); body ${short(answer.text, 200)}`);
  else {
    for (const [lower, h] of Object.entries(doc.headers)) {
      const v = answer.headers[lower];
      if (v === undefined) {
        if (promised(lower, h, status)) add('missing_header', `${h.name} missing on a ${status}`);
      } else {
        const errs = validators.stringErrors(h.schema, v);
        if (errs.length > 0) add('bad_header', `${h.name}: ${JSON.stringify(v)} ${errs[0]}`);
      }
    }
    if (doc.schema) {
      const ct = answer.headers['content-type'] ?? '';
      if (!/^application\/json\b/i.test(ct)) add('schema_mismatch', `content-type ${JSON.stringify(ct)} on a ${status}; the document says application/json; body ${short(answer.text, 200)}`);
      else if (answer.json === undefined) add('schema_mismatch', `a ${status} body that is not JSON: ${short(answer.text, 200)}`);
      else {
        const errs = validators.errors(doc.schema, answer.json);
        if (errs.length > 0) add('schema_mismatch', `${errs.slice(0, 3).join('; ')}; body ${short(answer.text, 300)}`);
      }
    } else if (answer.text.length > 0 && doc.otherContent.length === 0) {
      add('schema_mismatch', `a ${status} documents no body; got ${short(answer.text, 200)}`);
    }
  }
  if (sent.requestId?.valid && answer.headers['x-request-id'] !== sent.requestId.value) {
    add('request_id_not_echoed', `sent X-Request-Id ${JSON.stringify(sent.requestId.value)} (valid by the document), got ${JSON.stringify(answer.headers['x-request-id'] ?? null)}`);
  }

  const ok2xx = status >= 200 && status < 300;
  const why = expect.why ? ` (${expect.why})` : '';
  const got = `${status}${code ? ` ${code}` : ''}`;
  switch (expect.kind) {
    case 'success':
      if (!ok2xx && status !== 429 && status < 500 && !(expect.allow?.(status, code) ?? false)) {
        add(expect.onReject ?? (status === 400 ? 'valid_rejected' : 'unexpected_status'), `a valid request got ${got}${why}: ${short(answer.text, 300)}`);
      }
      break;
    case 'client_error':
      if (ok2xx) add(expect.onAccept ?? 'invalid_accepted', `got ${got}${why}`);
      else if (status < 400) add('unexpected_status', `got ${got}${why}`);
      break;
    case 'not_found':
      if (ok2xx) add(expect.onAccept ?? 'not_found_ignored', `got ${got}${why}`);
      else if (status !== 404 && status !== 429 && status < 500) add('unexpected_status', `expected 404, got ${got}${why}: ${short(answer.text, 200)}`);
      break;
    case 'forbidden':
      if (ok2xx) add(expect.onAccept ?? 'scope_bypass', `got ${got}${why}`);
      else if (status !== 403 && status !== 429 && status < 500 && !(expect.allow?.(status, code) ?? false)) add('unexpected_status', `expected 403, got ${got}${why}: ${short(answer.text, 200)}`);
      break;
    case 'unauthorized':
      if (ok2xx) add(expect.onAccept ?? 'auth_bypass', `got ${got}${why}`);
      else if (status !== 401 && status < 500) add('unexpected_status', `expected 401, got ${got}${why}: ${short(answer.text, 200)}`);
      break;
    case 'any':
      break;
    default:
      throw new Error(`unknown expectation ${expect.kind}`);
  }
  return failures;
}
