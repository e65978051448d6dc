/**
 * API keys under attack: the key model (which secret must answer 200), fast-check command
 * sequences over one key, DESIGN's grants (no escalation) and issue 8's "every secret follows its
 * key" sequences. Functions over the running Fuzzer (`f`).
 */
import fc from 'fast-check';

/** What the fuzzing tenant asks the operator for, and its keys then get: 429s must not blur the result. */
export const CEILING = { burst_per_second: 100_000, per_minute: 1_000_000, per_hour: 10_000_000, daily: 100_000_000 };
/** DESIGN's default tenant ceiling: the most a key may get where the operator could not raise it. */
export const DEFAULT_CEILING = { burst_per_second: 1_000, per_minute: 100_000, per_hour: 1_000_000, daily: 10_000_000 };

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** `write` implies `read`; any one of the operation's scopes is enough. */
export function holds(granted, required) {
  return required.some((r) => granted.includes(r) || (r.endsWith(':read') && granted.includes(r.replace(/:read$/, ':write'))));
}

function keyOps(f) {
  return {
    create: f.opAt('POST', '/v1/keys'),
    get: f.opAt('GET', '/v1/keys/{id}'),
    update: f.opAt('PATCH', '/v1/keys/{id}'),
    rotate: f.opAt('POST', '/v1/keys/{id}/rotate'),
    revoke: f.opAt('POST', '/v1/keys/{id}/revoke'),
    logs: f.opAt('GET', '/v1/keys/{id}/logs'),
    whoami: f.opAt('GET', '/v1/whoami'),
  };
}

/** A secret's expected answer from the model: DESIGN says every credential follows its key at once. */
async function useSecret(f, key, secret, family) {
  const { whoami } = keyOps(f);
  const now = Date.now();
  let expect;
  const caller = { label: `secret #${key.secrets.indexOf(secret) + 1} of a fuzz key`, secret: secret.value, scopes: [] };
  if (key.status !== 'active') expect = { kind: 'unauthorized', why: `key ${key.status}`, onAccept: `${key.status}_key_secret_works` };
  else if (secret.until <= now - 1000) expect = { kind: 'unauthorized', why: 'a secret rotated away (no grace left)', onAccept: 'rotated_secret_works' };
  else if (secret.until > now + 10_000) expect = { kind: 'success', why: 'a live secret of an active key', onReject: 'secret_refused' };
  else expect = { kind: 'any' };
  const r = await f.send(whoami, { caller }, { expect, family, note: `secret #${key.secrets.indexOf(secret) + 1} of ${key.secrets.length}, key ${key.status}` });
  if (r.status === 200 && r.json?.api_key_id !== key.id) {
    f.failures.push({ op: whoami.id, kind: 'wrong_key', message: `secret of ${key.id} answered as ${r.json?.api_key_id}`, family, expected: 'success', request: { method: 'GET', url: whoami.path, caller: caller.label }, response: { status: 200, body: r.text.slice(0, 300) } });
  }
  return r;
}

/** Applies a key command's answer to the model (from what happened, not from what was meant). */
function applyKey(key, which, body, r) {
  if (!(r.status >= 200 && r.status < 300)) return;
  const now = Date.now();
  if (which === 'rotate') {
    const grace = typeof body?.grace_period_seconds === 'number' ? body.grace_period_seconds : 0;
    for (const [i, s] of key.secrets.entries()) {
      // Without a grace every older secret stops at once: from the very next request.
      if (grace === 0) s.until = -Infinity;
      else if (i === key.secrets.length - 1) s.until = Math.min(s.until, now + grace * 1000);
    }
    if (typeof r.json?.key === 'string') key.secrets.push({ value: r.json.key, until: Infinity });
  } else if (which === 'revoke') key.status = 'revoked';
  else if (which === 'update' && isObject(body) && typeof body.enabled === 'boolean' && key.status !== 'revoked') key.status = body.enabled ? 'active' : 'disabled';
  if (r.json?.status === 'expired') key.status = 'expired';
}

async function newKey(f, by, body, family) {
  const ops = keyOps(f);
  const r = await f.send(ops.create, { caller: by, body }, { family });
  if (r.status !== 201 || typeof r.json?.key !== 'string') return undefined;
  return { id: r.json.id, status: 'active', secrets: [{ value: r.json.key, until: Infinity }], json: r.json };
}

export async function keysSequence(f, rng) {
  const ops = keyOps(f);
  if (!ops.create || !ops.whoami) return;
  const A = f.tenants.A;
  const body = f.buildValid(ops.create, rng, 'A').body;
  if (!isObject(body)) return;
  if (rng.chance(0.8)) body.environment = A.worker.env;
  const key = await newKey(f, A.worker, body, 'key_sequence');
  if (!key) return;
  const command = fc.oneof(
    { weight: 4, arbitrary: fc.constant({ c: 'use' }) },
    { weight: 2, arbitrary: fc.record({ c: fc.constant('rotate'), grace: fc.constantFrom(0, 3600, 86_400, undefined) }) },
    { weight: 1, arbitrary: fc.constant({ c: 'get' }) },
    { weight: 1, arbitrary: fc.constant({ c: 'logs' }) },
    { weight: 2, arbitrary: fc.record({ c: fc.constant('update'), mutate: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ c: fc.constant('enabled'), value: fc.boolean() }) },
    { weight: 1, arbitrary: fc.constant({ c: 'revoke' }) },
    { weight: 2, arbitrary: fc.constant({ c: 'use_all' }) },
  );
  const commands = rng.draw(fc.array(command, { minLength: 2, maxLength: 9 }));
  for (const cmd of commands) {
    switch (cmd.c) {
      case 'use':
        await useSecret(f, key, rng.pick(key.secrets), 'key_sequence');
        break;
      case 'use_all':
        for (const s of key.secrets) await useSecret(f, key, s, 'key_sequence');
        break;
      case 'get':
      case 'logs': {
        const op = ops[cmd.c];
        if (op) await f.send(op, f.buildValid(op, rng, 'A', key.id), { id: 'live', family: 'key_sequence' });
        break;
      }
      case 'rotate': {
        if (!ops.rotate) break;
        const b = cmd.grace === undefined ? {} : { grace_period_seconds: cmd.grace };
        const r = await f.send(ops.rotate, { caller: A.worker, params: { id: key.id }, body: b }, { id: 'live', family: 'key_sequence', note: `grace ${cmd.grace ?? 'none'}` });
        applyKey(key, 'rotate', b, r);
        break;
      }
      case 'revoke': {
        if (!ops.revoke) break;
        const r = await f.send(ops.revoke, { caller: A.worker, params: { id: key.id }, body: {} }, { id: 'live', family: 'key_sequence' });
        applyKey(key, 'revoke', {}, r);
        break;
      }
      case 'enabled': {
        if (!ops.update) break;
        const b = { enabled: cmd.value };
        const r = await f.send(ops.update, { caller: A.worker, params: { id: key.id }, body: b }, { id: 'live', family: 'key_sequence' });
        applyKey(key, 'update', b, r);
        break;
      }
      case 'update': {
        if (!ops.update) break;
        const which = rng.pick(['update', 'rotate', 'revoke'].filter((w) => ops[w]));
        const op = ops[which];
        const m = cmd.mutate ? f.buildMutation(op, rng, 'A', key.id) : { req: f.buildValid(op, rng, 'A', key.id), family: 'key_sequence', note: undefined };
        const r = await f.send(op, m.req, { id: m.id ?? 'live', family: m.family, note: m.note });
        if (m.id === undefined) applyKey(key, which, m.req.body, r);
        break;
      }
      default:
        throw new Error(`unknown key command ${cmd.c}`);
    }
  }
}

/** DESIGN's grants: a key may give only what it holds, of its own mode, and never raise itself. */
export async function probeEscalation(f, rng) {
  const ops = keyOps(f);
  if (!ops.create) return;
  const A = f.tenants.A;
  const limits = f.keyLimits ?? CEILING;
  const half = Object.fromEntries(Object.entries(limits).map(([k, v]) => [k, Math.max(1, Math.floor(v / 2))]));
  const forbidden = (why) => ({ kind: 'forbidden', why, onAccept: 'escalation', allow: (s) => s === 403 });
  const narrow = await newKey(f, A.worker, { name: `fuzz grants ${rng.int(1e9)}`, scopes: ['keys:write'], rate_limit: half }, 'escalation');
  const victim = await newKey(f, A.worker, { name: `fuzz victim ${rng.int(1e9)}`, scopes: f.allScopes, rate_limit: half }, 'escalation');
  if (!narrow || !victim) return;
  const by = { label: 'a keys:write key', secret: narrow.secrets[0].value, scopes: ['keys:write'], env: 'live' };
  const other = f.allScopes.find((s) => !holds(['keys:write'], [s]));
  const cases = [
    [ops.create, {}, { name: `fuzz e1 ${rng.int(1e9)}`, scopes: [other] }, `create a key with ${other}, which it lacks`],
    [ops.create, {}, { name: `fuzz e1b ${rng.int(1e9)}`, scopes: f.allScopes }, 'create a key with every scope'],
    [ops.update, { id: narrow.id }, { scopes: ['keys:write', other] }, `add ${other} to itself`],
    [ops.update, { id: narrow.id }, { rate_limit: limits }, 'raise its own limits'],
    [ops.update, { id: victim.id }, { name: 'renamed by a narrower key' }, 'change a key that holds scopes it lacks'],
    [ops.update, { id: victim.id }, { enabled: false }, 'disable a key that holds scopes it lacks'],
    [ops.rotate, { id: victim.id }, {}, 'rotate a key that holds scopes it lacks'],
    [ops.revoke, { id: victim.id }, {}, 'revoke a key that holds scopes it lacks'],
  ];
  for (const [op, params, body, why] of cases) {
    if (op) await f.send(op, { caller: by, params, body }, { expect: forbidden(why), family: 'escalation', note: why });
  }
  // What it may give: its own scope, within the ceiling (not within its own limits).
  await f.send(ops.create, { caller: by, body: { name: `fuzz e-ok ${rng.int(1e9)}`, scopes: ['keys:write'], rate_limit: limits } }, { family: 'escalation', note: 'create a key with its own scope and the ceiling limits' });
  const otherMode = A.worker.env === 'live' ? 'test' : 'live';
  await f.send(ops.create, { caller: A.worker, body: { name: `fuzz mode ${rng.int(1e9)}`, scopes: [], environment: otherMode } }, { expect: forbidden(`a ${A.worker.env} key creates a ${otherMode} key`), family: 'escalation', note: 'other mode' });
  if (A.testWorker) {
    const t = A.testWorker;
    const r = await f.send(ops.create, { caller: t, body: { name: `fuzz test-default ${rng.int(1e9)}`, scopes: [] } }, { family: 'escalation', note: 'a test key creates a key without environment' });
    if (r.status === 201 && r.json?.environment !== 'test') {
      f.failures.push({ op: ops.create.id, kind: 'escalation', message: `a kw_test_ key created a ${r.json?.environment} key (environment defaults to the caller's)`, family: 'escalation', expected: 'success', request: { method: 'POST', url: ops.create.path, caller: t.label }, response: { status: r.status, body: r.text.slice(0, 300) } });
    }
    const notMine = (why) => ({ kind: 'forbidden', why, onAccept: 'escalation', allow: (s) => s === 403 || s === 404 });
    const live = await newKey(f, A.worker, { name: `fuzz live victim ${rng.int(1e9)}`, scopes: [], rate_limit: half }, 'escalation');
    if (live && ops.update) await f.send(ops.update, { caller: t, params: { id: live.id }, body: { name: 'renamed by a test key' } }, { expect: notMine('a test key changes a live key'), family: 'escalation', note: 'test key manages a live key' });
    if (live && ops.revoke) await f.send(ops.revoke, { caller: t, params: { id: live.id }, body: {} }, { expect: notMine('a test key revokes a live key'), family: 'escalation', note: 'test key revokes a live key' });
  }
}

/** Issue 8's sequence: every secret still in a grace must stop with its key, at once. */
export async function probeSecrets(f, end, rng) {
  const ops = keyOps(f);
  if (!ops.create || !ops.rotate || !ops.whoami) return;
  const A = f.tenants.A;
  const key = await newKey(f, A.worker, { name: `fuzz secrets ${end} ${rng.int(1e9)}`, scopes: [], rate_limit: f.keyLimits ?? CEILING }, `secrets_${end}`);
  if (!key) return;
  const family = `secrets_${end}`;
  await useSecret(f, key, key.secrets[0], family);
  for (let i = 0; i < 2; i++) {
    const b = { grace_period_seconds: 3600 };
    applyKey(key, 'rotate', b, await f.send(ops.rotate, { caller: A.worker, params: { id: key.id }, body: b }, { id: 'live', family }));
    for (const s of key.secrets) await useSecret(f, key, s, family);
  }
  if (end === 'revoke') applyKey(key, 'revoke', {}, await f.send(ops.revoke, { caller: A.worker, params: { id: key.id }, body: {} }, { id: 'live', family }));
  else if (end === 'disable') {
    if (!ops.update) return;
    applyKey(key, 'update', { enabled: false }, await f.send(ops.update, { caller: A.worker, params: { id: key.id }, body: { enabled: false } }, { id: 'live', family }));
  } else {
    const b = { grace_period_seconds: 0 };
    applyKey(key, 'rotate', b, await f.send(ops.rotate, { caller: A.worker, params: { id: key.id }, body: b }, { id: 'live', family }));
  }
  for (const s of key.secrets) await useSecret(f, key, s, family);
}
