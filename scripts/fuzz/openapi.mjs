/**
 * The served OpenAPI document, read once: its operations with every `$ref` inlined, and ajv
 * validators for what the document promises (request bodies and parameters, to classify what the
 * fuzzer sends; response bodies and headers, to judge what comes back).
 */
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

/** OpenAPI 3.1's default dialect: JSON Schema 2020-12 plus the OAS vocabulary (annotations only). */
const OAS_31_DIALECT = 'https://spec.openapis.org/oas/3.1/dialect/base';
const JSON_SCHEMA_2020_12 = 'https://json-schema.org/draft/2020-12/schema';
const METHODS = ['get', 'put', 'post', 'patch', 'delete'];

export async function fetchDocument(baseUrl) {
  const res = await fetch(new URL('/docs/openapi.json', baseUrl));
  if (res.status !== 200) throw new Error(`GET /docs/openapi.json answered ${res.status}`);
  return res.json();
}

function pointer(doc, ref) {
  if (!ref.startsWith('#/')) throw new Error(`only local $refs are supported, got ${ref}`);
  let node = doc;
  for (const raw of ref.slice(2).split('/')) {
    node = node?.[raw.replace(/~1/g, '/').replace(/~0/g, '~')];
    if (node === undefined) throw new Error(`$ref ${ref} points nowhere`);
  }
  return node;
}

/**
 * A copy of `node` with every `$ref` replaced by its target. A ref that loops back onto itself
 * becomes `{}` (any value): the generator then stops there, and validation of that spot is lenient.
 */
function deref(doc, node, stack = []) {
  if (Array.isArray(node)) return node.map((n) => deref(doc, n, stack));
  if (!node || typeof node !== 'object') return node;
  if (typeof node.$ref === 'string') {
    if (stack.includes(node.$ref)) return {};
    const { $ref, ...siblings } = node;
    const target = deref(doc, pointer(doc, $ref), [...stack, $ref]);
    return Object.keys(siblings).length > 0 ? { ...target, ...deref(doc, siblings, stack) } : target;
  }
  const out = {};
  for (const [k, v] of Object.entries(node)) out[k] = deref(doc, v, stack);
  return out;
}

function securityOf(op, doc) {
  const requirements = op.security ?? doc.security ?? [];
  if (requirements.length === 0) return { kind: 'none', scopes: undefined };
  const schemes = requirements.flatMap((r) => Object.keys(r));
  if (schemes.includes('adminToken')) return { kind: 'admin', scopes: undefined };
  const scopes = op['x-required-scopes'] ?? [...new Set(requirements.flatMap((r) => Object.values(r).flat()))];
  return { kind: 'apiKey', scopes };
}

/** Every operation of the document, ready to fuzz. */
export function operationsOf(doc) {
  const ops = [];
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    const shared = item.parameters ?? [];
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const parameters = [...shared, ...(op.parameters ?? [])].map((p) => deref(doc, p));
      const body = op.requestBody ? deref(doc, op.requestBody) : undefined;
      const responses = {};
      for (const [status, raw] of Object.entries(op.responses ?? {})) {
        const r = deref(doc, raw);
        const json = r.content?.['application/json'];
        responses[status] = {
          headers: Object.fromEntries(Object.entries(r.headers ?? {}).map(([name, h]) => [name.toLowerCase(), { name, schema: h.schema ?? {}, required: h.required }])),
          schema: json ? (json.schema ?? {}) : undefined,
          otherContent: Object.keys(r.content ?? {}).filter((c) => c !== 'application/json'),
        };
      }
      const firstParam = path.indexOf('/{');
      ops.push({
        id: op.operationId ?? `${method.toUpperCase()} ${path}`,
        method: method.toUpperCase(),
        path,
        collection: firstParam === -1 ? path : path.slice(0, firstParam),
        hasPathParams: firstParam !== -1,
        parameters,
        body: body ? { required: body.required === true, schema: body.content?.['application/json']?.schema, types: Object.keys(body.content ?? {}) } : undefined,
        responses,
        security: securityOf(op, doc),
      });
    }
  }
  return ops;
}

/** The JSON Schema dialect of the document's schemas, and whether ajv here speaks it. */
export function dialectOf(doc) {
  if (!String(doc.openapi).startsWith('3.1')) throw new Error(`OpenAPI ${doc.openapi}: this fuzzer reads 3.1 documents (JSON Schema 2020-12)`);
  const dialect = doc.jsonSchemaDialect ?? OAS_31_DIALECT;
  if (dialect !== OAS_31_DIALECT && dialect !== JSON_SCHEMA_2020_12) throw new Error(`unsupported jsonSchemaDialect ${dialect}`);
  return { dialect, declared: doc.jsonSchemaDialect !== undefined };
}

/**
 * Validators keyed by schema object identity. `strict: false` because OpenAPI schemas carry
 * annotations ajv does not know (`example`, `x-…`); formats are checked, as OAS 3.1 documents
 * them as assertions for the formats it names.
 */
export class Validators {
  constructor() {
    this.ajv = addFormats(new Ajv2020({ strict: false, allErrors: true, validateFormats: true }));
    // Query values and headers arrive as strings: `"12"` is a fine integer there.
    this.coercing = addFormats(new Ajv2020({ strict: false, allErrors: true, coerceTypes: true }));
    this.cache = new WeakMap();
    this.coercingCache = new WeakMap();
    this.wrappers = new WeakMap();
  }

  compile(schema, coerce = false) {
    const cache = coerce ? this.coercingCache : this.cache;
    let fn = cache.get(schema);
    if (!fn) {
      fn = (coerce ? this.coercing : this.ajv).compile(schema);
      cache.set(schema, fn);
    }
    return fn;
  }

  /** `[]` when valid, else readable errors. */
  errors(schema, value) {
    const fn = this.compile(schema);
    return fn(value) ? [] : fn.errors.map((e) => `${e.instancePath || '(root)'} ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${e.params.additionalProperty})` : ''}`);
  }

  /** A string (query value or header) against a parameter schema, coerced as a server would. */
  stringErrors(schema, value) {
    let wrapper = this.wrappers.get(schema);
    if (!wrapper) {
      wrapper = { type: 'object', properties: { v: schema }, required: ['v'] };
      this.wrappers.set(schema, wrapper);
    }
    const fn = this.compile(wrapper, true);
    const holder = { v: value };
    return fn(holder) ? [] : fn.errors.map((e) => `${e.instancePath.replace(/^\/v/, '') || '(value)'} ${e.message}`);
  }

  valid(schema, value) {
    return this.compile(schema)(value);
  }
}
