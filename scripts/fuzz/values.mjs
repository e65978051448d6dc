/**
 * Values to send: valid ones sampled from the document's schemas by json-schema-faker (seeded),
 * and mutations of them drawn by fast-check (wrong types, missing and extra fields, boundary
 * sizes, NUL, huge strings, deep nesting, unicode). What a value IS (valid or not) is never
 * assumed from how it was made: `classify` (in checks.mjs) decides with ajv and the size rules.
 */
import fc from 'fast-check';
import { generateSync } from 'json-schema-faker';

// --- A seeded source of choices ----------------------------------------------------------------

/** mulberry32: the plan's structural choices (which operation, which slot); fast-check draws the values. */
export class Rng {
  constructor(seed) {
    this.state = seed >>> 0;
  }

  next() {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(n) {
    return Math.floor(this.next() * n);
  }

  pick(list) {
    return list[this.int(list.length)];
  }

  chance(p) {
    return this.next() < p;
  }

  /** One value of a fast-check arbitrary, reproducible from this generator's state. */
  draw(arbitrary) {
    return fc.sample(arbitrary, { seed: this.int(2 ** 31), numRuns: 1 })[0];
  }

  weighted(table) {
    const total = table.reduce((s, [, w]) => s + w, 0);
    let r = this.next() * total;
    for (const [value, w] of table) {
      r -= w;
      if (r < 0) return value;
    }
    return table[table.length - 1][0];
  }
}

// --- Valid samples -----------------------------------------------------------------------------

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const typesOf = (schema) => (schema.type === undefined ? [] : Array.isArray(schema.type) ? schema.type : [schema.type]);

/**
 * The schema as the generator should read it: arrays capped at a few items and numbers near their
 * lower bound (500 touchpoints or a page number of 9e15 are for the boundary mutations to try, not
 * for every valid sample), dates in the future (a past `expires_at` is a semantic 400).
 */
function forGeneration(schema) {
  if (Array.isArray(schema)) return schema.map(forGeneration);
  if (!isObject(schema)) return schema;
  const out = {};
  for (const [k, v] of Object.entries(schema)) out[k] = forGeneration(v);
  if (typeof out.maxItems === 'number') out.maxItems = Math.max(out.minItems ?? 0, Math.min(out.maxItems, 3));
  else if (typesOf(out).includes('array')) out.maxItems = Math.max(out.minItems ?? 0, 3);
  if (typesOf(out).some((t) => t === 'integer' || t === 'number')) {
    const lo = out.minimum ?? out.exclusiveMinimum ?? -1000;
    const hi = out.maximum ?? out.exclusiveMaximum ?? lo + 1000;
    if (hi - lo > 100_000) {
      out.maximum = lo + 1000;
      delete out.exclusiveMaximum;
    }
  }
  return out;
}

const prepared = new WeakMap();
const DAY = 86_400_000;

function generate(schema, seed, allOptionals) {
  let p = prepared.get(schema);
  if (!p) {
    p = forGeneration(schema);
    prepared.set(schema, p);
  }
  const now = Date.now();
  return generateSync(p, {
    seed,
    minDateTime: new Date(now + DAY).toISOString(),
    maxDateTime: new Date(now + 1000 * DAY).toISOString(),
    optionalsProbability: 0.5,
    // minProperties with optional properties only: the generator needs all of them offered.
    ...(allOptionals ? { alwaysFakeOptionals: true } : {}),
    maxDepth: 6,
  });
}

const regexes = new Map();
function regexOf(pattern) {
  if (!regexes.has(pattern)) regexes.set(pattern, new RegExp(pattern, 'u'));
  return regexes.get(pattern);
}

/** Strings the generator made without honouring their `pattern`, redrawn by fast-check from the pattern. */
function repairPatterns(value, schema, rng, validators) {
  let out = value;
  for (const slot of slotsOf(schema, value, validators)) {
    const s = slot.schema;
    if (!slot.present || typeof slot.value !== 'string' || typeof s.pattern !== 'string') continue;
    const re = regexOf(s.pattern);
    if (re.test(slot.value)) continue;
    for (let i = 0; i < 8; i++) {
      const v = rng.draw(fc.stringMatching(re, { size: 'small' }));
      if (v.length >= (s.minLength ?? 0) && v.length <= (s.maxLength ?? Infinity)) {
        out = setAt(out, slot.path, v);
        break;
      }
    }
  }
  return out;
}

/**
 * A value the schema accepts: json-schema-faker's sample, its patterns repaired, checked by ajv, a
 * few seeds tried. The last attempt is returned even if invalid (the request is then classified
 * as what it is), undefined only if the generator failed every time.
 */
export function sampleValid(schema, rng, validators) {
  let last;
  for (let attempt = 0; attempt < 5; attempt++) {
    let v;
    try {
      v = generate(schema, rng.int(2 ** 31), attempt >= 2);
    } catch {
      continue;
    }
    v = repairPatterns(v, schema, rng, validators);
    if (validators.valid(schema, v)) return v;
    last = v;
  }
  return last;
}

// --- Slots: every place in a value, with the schema that governs it ----------------------------

const merged = new WeakMap();

/**
 * anyOf/oneOf: the first branch the value satisfies (else the first one), merged with the
 * schema's other keywords. Kept per branch, so validators compiled for it are reused.
 */
function branch(schema, value, validators) {
  const options = schema.anyOf ?? schema.oneOf;
  if (!options) return schema;
  const chosen = options.find((o) => validators.valid(o, value)) ?? options[0];
  let byBranch = merged.get(schema);
  if (!byBranch) merged.set(schema, (byBranch = new Map()));
  if (!byBranch.has(chosen)) {
    const rest = { ...schema };
    delete rest.anyOf;
    delete rest.oneOf;
    byBranch.set(chosen, { ...rest, ...chosen });
  }
  return byBranch.get(chosen);
}

/** A free-form object: keys chosen by the client (`properties`, `metadata`), DESIGN's size budget applies. */
export function isFreeForm(schema) {
  return typesOf(schema).includes('object') && !schema.properties && schema.additionalProperties !== false;
}

export function slotsOf(schema, value, validators, path = [], out = [], parent) {
  // Deeper than any schema here goes: a nesting mutation of 5,000 levels is one slot, not 5,000.
  if (path.length > 40) return out;
  const s = branch(schema ?? {}, value, validators);
  out.push({ path, schema: s, value, present: true, required: parent ? (parent.required ?? []).includes(path[path.length - 1]) : true, parent });
  if (isObject(value)) {
    for (const [k, child] of Object.entries(value)) {
      const childSchema = s.properties?.[k] ?? (isObject(s.additionalProperties) ? s.additionalProperties : {});
      slotsOf(childSchema, child, validators, [...path, k], out, s);
    }
    for (const [k, childSchema] of Object.entries(s.properties ?? {})) {
      if (!(k in value)) out.push({ path: [...path, k], schema: branch(childSchema, undefined, validators), value: undefined, present: false, required: (s.required ?? []).includes(k), parent: s });
    }
  } else if (Array.isArray(value)) {
    value.forEach((child, i) => slotsOf(s.items ?? {}, child, validators, [...path, i], out, s));
  }
  return out;
}

export const clone = (v) => (v === undefined ? undefined : structuredClone(v));

/** A copy of `root` with the value at `path` replaced (undefined: removed). */
export function setAt(root, path, value) {
  if (path.length === 0) return value;
  const copy = clone(root);
  let node = copy;
  for (const k of path.slice(0, -1)) node = node[k];
  if (value === undefined) {
    if (Array.isArray(node)) node.splice(path[path.length - 1], 1);
    else delete node[path[path.length - 1]];
  } else node[path[path.length - 1]] = value;
  return copy;
}

const pathText = (path) => (path.length === 0 ? '(body)' : path.join('.'));

// --- Mutations ---------------------------------------------------------------------------------

/** Strings that break things: control characters, bidi overrides, joiners, lone surrogates, astral. */
const NASTY_UNIT = fc.constantFrom('\u202e', '\u200d', '\ufeff', '\u0301', '\ud800', '\udfff', '\u{1d54f}', '\u{1f469}\u200d\u{1f469}\u200d\u{1f467}', '\u0007', '\u007f', '\u2028', '%00', "'", '"', '\\');
export const unicodeString = fc.oneof(
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }),
  fc.string({ unit: NASTY_UNIT, minLength: 1, maxLength: 20 }),
);
const otherTypeValues = [0, 1.5, -1, 'text', true, false, null, [], {}, [1, 'a'], { a: 1 }];

/** The mutation families that act on a JSON body (or any JSON value). */
export const BODY_MUTATIONS = ['wrong_type', 'missing_required', 'extra_field', 'boundary', 'nul', 'huge_string', 'deep_nesting', 'unicode', 'free_form_size', 'empty_object', 'duplicate_items', 'lone_surrogate', 'null_body'];

const nested = (depth, leaf) => {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
};

const DEEP_PLACEHOLDER = '\u0001deep\u0001';

/** The body's JSON text with the placeholder replaced by `depth` nested objects. */
export function deepBody(value, depth) {
  return JSON.stringify(value).replace(JSON.stringify(DEEP_PLACEHOLDER), `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);
}

/** A string of `n` code points of `unit` (the unit decides UTF-16 and UTF-8 length). */
const repeatUnit = (unit, n) => unit.repeat(Math.max(0, n));

/**
 * Applies one mutation family to a valid value. Returns `{value, note}` or undefined when the
 * family has nothing to act on here (the caller then tries another one). `opts.depth` and
 * `opts.bytes` fix what the nesting and free-form families otherwise draw.
 */
export function mutate(kind, value, schema, rng, validators, opts = {}) {
  const slots = slotsOf(schema, value, validators);
  const present = slots.filter((s) => s.present);
  const strings = present.filter((s) => typeof s.value === 'string');
  switch (kind) {
    case 'wrong_type': {
      const slot = rng.pick(present);
      const allowed = typesOf(slot.schema);
      const candidates = otherTypeValues.filter((v) => {
        const t = v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'number' ? (Number.isInteger(v) ? 'integer' : 'number') : typeof v;
        return allowed.length === 0 ? v !== slot.value : !allowed.includes(t) && !(t === 'integer' && allowed.includes('number'));
      });
      if (candidates.length === 0) return undefined;
      const v = rng.pick(candidates);
      return { value: setAt(value, slot.path, v), note: `${JSON.stringify(v)} at ${pathText(slot.path)}` };
    }
    case 'missing_required': {
      const req = present.filter((s) => s.path.length > 0 && s.required);
      if (req.length === 0) return undefined;
      const slot = rng.pick(req);
      return { value: setAt(value, slot.path, undefined), note: `without ${pathText(slot.path)}` };
    }
    case 'extra_field': {
      const objects = present.filter((s) => isObject(s.value));
      if (objects.length === 0) return undefined;
      const closed = objects.filter((s) => s.schema.additionalProperties === false);
      const slot = rng.pick(closed.length > 0 ? closed : objects);
      let name = rng.draw(fc.string({ minLength: 1, maxLength: 24 }));
      if (slot.schema.properties && name in slot.schema.properties) name = `${name}_extra`;
      const extra = rng.draw(fc.jsonValue({ maxDepth: 2 }));
      return { value: setAt(value, [...slot.path, name], extra), note: `${JSON.stringify(name)} added at ${pathText(slot.path)}` };
    }
    case 'boundary': {
      const bounded = slots.filter(
        (s) => s.schema.maxLength !== undefined || s.schema.minLength !== undefined || s.schema.maxItems !== undefined || s.schema.minItems !== undefined || s.schema.maximum !== undefined || s.schema.minimum !== undefined,
      );
      if (bounded.length === 0) return undefined;
      const slot = rng.pick(bounded);
      const s = slot.schema;
      const edges = [];
      if (s.maxLength !== undefined) edges.push(['string', s.maxLength], ['string', s.maxLength + 1]);
      if (s.minLength !== undefined && s.minLength > 0) edges.push(['string', s.minLength], ['string', s.minLength - 1]);
      if (s.maxItems !== undefined) edges.push(['array', s.maxItems], ['array', s.maxItems + 1]);
      if (s.minItems !== undefined && s.minItems > 0) edges.push(['array', s.minItems - 1]);
      if (s.maximum !== undefined) edges.push(['number', s.maximum], ['number', s.maximum + 1]);
      if (s.minimum !== undefined) edges.push(['number', s.minimum], ['number', s.minimum - 1]);
      const [what, n] = rng.pick(edges);
      let v;
      if (what === 'string') {
        // The unit matters: JSON Schema counts code points, JavaScript strings count UTF-16 units.
        const unit = rng.pick(['a', 'a', '\u00e9', '\u{1f600}']);
        v = repeatUnit(unit, n);
        return { value: setAt(value, slot.path, v), note: `${n} × ${JSON.stringify(unit)} at ${pathText(slot.path)}` };
      }
      if (what === 'array') {
        const itemSchema = s.items ?? {};
        const base = Array.isArray(slot.value) && slot.value.length > 0 ? slot.value : [sampleValid(itemSchema, rng, validators)];
        v = Array.from({ length: n }, (_, i) => clone(base[i % base.length]));
        return { value: setAt(value, slot.path, v), note: `${n} items at ${pathText(slot.path)}` };
      }
      return { value: setAt(value, slot.path, n), note: `${n} at ${pathText(slot.path)}` };
    }
    case 'nul': {
      const objects = present.filter((s) => isFreeForm(s.schema) && isObject(s.value));
      if (strings.length === 0 && objects.length === 0) return undefined;
      if (objects.length > 0 && (strings.length === 0 || rng.chance(0.3))) {
        const slot = rng.pick(objects);
        return { value: setAt(value, [...slot.path, 'k\u0000ey'], 'v'), note: `NUL in a key of ${pathText(slot.path)}` };
      }
      // Free text is where a NUL tests the store; an enum or a format fails on its own already.
      const free = strings.filter((x) => !x.schema.enum && !x.schema.format && !x.schema.pattern && x.schema.const === undefined);
      const slot = rng.pick(free.length > 0 && rng.chance(0.85) ? free : strings);
      const at = rng.int(slot.value.length + 1);
      return { value: setAt(value, slot.path, `${slot.value.slice(0, at)}\u0000${slot.value.slice(at)}`), note: `NUL at ${pathText(slot.path)}[${at}]` };
    }
    case 'huge_string': {
      const targets = strings.length > 0 ? strings : present;
      const slot = rng.pick(targets);
      const n = rng.pick([70_000, 300_000, 1_100_000]);
      return { value: setAt(value, slot.path, repeatUnit(rng.pick(['x', '\u00e9']), n)), note: `${n}-character string at ${pathText(slot.path)}` };
    }
    case 'deep_nesting': {
      const free = present.filter((s) => isFreeForm(s.schema));
      const slot = free.length > 0 && (opts.freeForm || rng.chance(0.8)) ? rng.pick(free) : rng.pick(present);
      const depth = opts.depth ?? rng.pick([8, 40, 200, 5000]);
      const note = `nesting depth ${depth} at ${pathText(slot.path)}`;
      // JSON.stringify recurses: thousands of levels go into the body as text (see deepBody).
      if (depth > 500) return { value: setAt(value, slot.path, DEEP_PLACEHOLDER), note, deep: { depth, at: slot.path } };
      return { value: setAt(value, slot.path, nested(depth, 1)), note };
    }
    case 'unicode': {
      if (strings.length === 0) return undefined;
      const slot = rng.pick(strings);
      const v = rng.draw(unicodeString);
      return { value: setAt(value, slot.path, v), note: `${JSON.stringify(v)} at ${pathText(slot.path)}` };
    }
    case 'free_form_size': {
      const free = slots.filter((s) => isFreeForm(s.schema));
      if (free.length === 0) return undefined;
      const slot = rng.pick(free);
      const bytes = opts.bytes ?? rng.pick([4_000, 12_000, 24_000, 200_000, 900_000]);
      // Values the schema accepts (metadata takes strings ≤ 500): many keys of short strings.
      const obj = {};
      let size = 2;
      for (let i = 0; size < bytes; i++) {
        const k = `k${i}`;
        const v = 'v'.repeat(Math.min(400, bytes - size));
        obj[k] = v;
        size += k.length + v.length + 6;
      }
      return { value: setAt(value, slot.path, obj), note: `${bytes}-byte object at ${pathText(slot.path)}` };
    }
    case 'duplicate_items': {
      const arrays = present.filter((s) => Array.isArray(s.value) && s.value.length > 0);
      const lists = arrays.length > 0 ? arrays : slots.filter((s) => typesOf(s.schema).includes('array') && s.schema.items);
      if (lists.length === 0) return undefined;
      const slot = rng.pick(lists);
      const items = Array.isArray(slot.value) && slot.value.length > 0 ? slot.value : [sampleValid(slot.schema.items, rng, validators)];
      const v = [...items, clone(items[rng.int(items.length)])];
      return { value: setAt(value, slot.path, v), note: `a repeated item in ${pathText(slot.path)}` };
    }
    case 'lone_surrogate': {
      if (strings.length === 0) return undefined;
      const free = strings.filter((x) => !x.schema.enum && !x.schema.format && !x.schema.pattern);
      const slot = rng.pick(free.length > 0 ? free : strings);
      const unit = rng.pick(['\ud800', '\udfff', '\udbff']);
      return { value: setAt(value, slot.path, `${slot.value.slice(0, 1)}${unit}${slot.value.slice(1)}`), note: `lone surrogate ${JSON.stringify(unit)} in ${pathText(slot.path)}` };
    }
    case 'empty_object':
      return isObject(value) && Object.keys(value).length > 0 ? { value: {}, note: 'empty object' } : undefined;
    case 'null_body':
      return { value: null, note: 'null body' };
    default:
      throw new Error(`unknown mutation ${kind}`);
  }
}

/** Raw bodies that are not the JSON the operation takes. */
export const RAW_BODIES = ['{"a":', '[', 'nul', '{"a":1}}', "{'a':1}", '\u0000', '{"a":"\\ud800"', ' ', '{"__proto__":{"x":1}}'];

/** Depth of a JSON value: a scalar is 0, `{}` is 1. */
export function depthOf(v) {
  let max = 0;
  const stack = [[v, 0]];
  while (stack.length > 0) {
    const [node, d] = stack.pop();
    if (node !== null && typeof node === 'object') {
      const nd = d + 1;
      if (nd > max) max = nd;
      for (const child of Object.values(node)) stack.push([child, nd]);
    }
  }
  return max;
}

/** Whether any string or key in the value passes `test`. */
function anyString(v, test) {
  if (typeof v === 'string') return test(v);
  if (v === null || typeof v !== 'object') return false;
  const stack = [v];
  while (stack.length > 0) {
    const node = stack.pop();
    for (const [k, child] of Object.entries(node)) {
      if (test(k)) return true;
      if (typeof child === 'string' && test(child)) return true;
      if (child !== null && typeof child === 'object') stack.push(child);
    }
  }
  return false;
}

export const hasNul = (v) => anyString(v, (s) => s.includes('\u0000'));
/** A lone surrogate: JSON can carry it (`"\ud800"`), UTF-8 cannot store it. */
export const hasLoneSurrogate = (v) => anyString(v, (s) => !s.isWellFormed());
