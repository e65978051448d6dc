import fc from 'fast-check';
import { RATE_LIMIT_CEILING_DEFAULTS } from '@keyway/contracts';
import { decide, evolve, initialKeyState, liveSecrets, replay, statusOf, type KeyCommand, type KeyState, type RecordedEvent } from './key.decider';
import { createCommand as create, T0 } from '../../test/key-commands';
import { KeyError } from './key.errors';

function run(state: KeyState, command: KeyCommand, now = T0): { state: KeyState; events: RecordedEvent[] } {
  const events = decide(command, state, now).map((e) => ({ ...e, occurred_at: now.toISOString(), tenant_id: state.tenant_id || 'ten_a' }) as RecordedEvent);
  return { state: events.reduce(evolve, state), events };
}

describe('key decider: given / when / then', () => {
  const created = run(initialKeyState('key_1'), create()).state;

  it('create → created, version 1, active', () => {
    expect(created).toMatchObject({ exists: true, version: 1, prefix: 'kw_live_aaaaaaaa' });
    expect(statusOf(created, T0)).toBe('active');
  });

  it('refuses an expires_at in the past as invalid_request', () => {
    expect(() => decide(create({ expires_at: '2000-01-01T00:00:00Z' }), initialKeyState('k'), T0)).toThrow(
      expect.objectContaining({ code: 'invalid_request' }),
    );
  });

  it('revoked is final: enable, update, rotate, revoke are conflicts', () => {
    const revoked = run(created, { type: 'revoke', reason: null }).state;
    for (const c of [{ type: 'enable' }, { type: 'update', changes: { name: 'x' } }, { type: 'rotate', new_prefix: 'kw_live_bbbbbbbb', grace_period_seconds: 0 }, { type: 'revoke', reason: null }] as KeyCommand[]) {
      expect(() => decide(c, revoked, T0)).toThrow(expect.objectContaining({ code: 'conflict' }));
    }
  });

  it('a command on a key that does not exist is not_found', () => {
    expect(() => decide({ type: 'revoke', reason: null }, initialKeyState('k'), T0)).toThrow(KeyError);
  });

  it('enable / disable are idempotent: no event when nothing changes', () => {
    expect(decide({ type: 'enable' }, created, T0)).toEqual([]);
    const disabled = run(created, { type: 'disable' }).state;
    expect(statusOf(disabled, T0)).toBe('disabled');
    expect(decide({ type: 'disable' }, disabled, T0)).toEqual([]);
  });

  it('rotation with grace keeps the previous prefix valid until the grace ends', () => {
    const [e] = decide({ type: 'rotate', new_prefix: 'kw_live_bbbbbbbb', grace_period_seconds: 60 }, created, T0);
    expect(e).toMatchObject({ type: 'rotated', prefix: 'kw_live_bbbbbbbb', data: { previous_prefix: 'kw_live_aaaaaaaa', previous_valid_until: '2026-01-01T00:01:00.000Z' } });
  });

  it('complete_rotation ends every older secret still in a grace, at once, and names them', () => {
    const once = run(created, { type: 'rotate', new_prefix: 'kw_live_bbbbbbbb', grace_period_seconds: 600 }).state;
    const twice = run(once, { type: 'rotate', new_prefix: 'kw_live_cccccccc', grace_period_seconds: 60 }).state;
    const later = new Date(T0.getTime() + 1_000);
    expect(liveSecrets(twice, later)).toEqual(['aaaaaaaa', 'bbbbbbbb', 'cccccccc']);
    const { state, events } = run(twice, { type: 'complete_rotation' }, later);
    expect(events).toEqual([
      expect.objectContaining({ type: 'rotation_completed', prefix: 'kw_live_cccccccc', data: { ended_prefixes: ['kw_live_aaaaaaaa', 'kw_live_bbbbbbbb'] } }),
    ]);
    expect(liveSecrets(state, later)).toEqual(['cccccccc']);
    expect(state.prefix).toBe('kw_live_cccccccc');
    expect(statusOf(state, later)).toBe('active');
  });

  it('complete_rotation with no grace to end decides nothing (a retry is harmless); on a revoked key it is a conflict', () => {
    expect(decide({ type: 'complete_rotation' }, created, T0)).toEqual([]);
    const hard = run(created, { type: 'rotate', new_prefix: 'kw_live_bbbbbbbb', grace_period_seconds: 0 }).state;
    expect(decide({ type: 'complete_rotation' }, hard, T0)).toEqual([]);
    const graced = run(created, { type: 'rotate', new_prefix: 'kw_live_bbbbbbbb', grace_period_seconds: 60 }).state;
    // The grace ended by itself: nothing left to end.
    expect(decide({ type: 'complete_rotation' }, graced, new Date(T0.getTime() + 60_000))).toEqual([]);
    const completed = run(graced, { type: 'complete_rotation' }).state;
    expect(decide({ type: 'complete_rotation' }, completed, T0)).toEqual([]);
    const revoked = run(graced, { type: 'revoke', reason: null }).state;
    expect(() => decide({ type: 'complete_rotation' }, revoked, T0)).toThrow(expect.objectContaining({ code: 'conflict' }));
    expect(() => decide({ type: 'complete_rotation' }, initialKeyState('k'), T0)).toThrow(expect.objectContaining({ code: 'not_found' }));
  });

  it('complete_rotation follows the grants: a key may not end the grace of a key holding a scope it lacks', () => {
    const graced = run(created, { type: 'rotate', new_prefix: 'kw_live_bbbbbbbb', grace_period_seconds: 60 }).state;
    const by = { key_id: 'key_caller', scopes: ['keys:write'], environment: 'live' as const };
    expect(() => decide({ type: 'complete_rotation' }, graced, T0, { by, ceiling: RATE_LIMIT_CEILING_DEFAULTS })).toThrow(
      expect.objectContaining({ code: 'insufficient_scope' }),
    );
    const holder = { ...by, scopes: ['keys:write', 'contacts:read'] };
    expect(decide({ type: 'complete_rotation' }, graced, T0, { by: holder, ceiling: RATE_LIMIT_CEILING_DEFAULTS })).toHaveLength(1);
  });

  it('expire records once, only after expires_at', () => {
    const k = run(initialKeyState('k'), create({ expires_at: '2026-01-01T00:00:10Z' })).state;
    expect(decide({ type: 'expire' }, k, T0)).toEqual([]);
    const later = new Date('2026-01-01T00:00:11Z');
    expect(statusOf(k, later)).toBe('expired');
    const expired = run(k, { type: 'expire' }, later).state;
    expect(decide({ type: 'expire' }, expired, later)).toEqual([]);
  });
});

/**
 * Model-based: random command sequences against a simple reference model. The "real" side is the
 * decider plus a credential table kept exactly as the projection keeps it.
 */
interface Model {
  exists: boolean;
  revoked: boolean;
  enabled: boolean;
  version: number;
  now: number;
  /** prefix → valid until (ms), Infinity for the current one */
  secrets: Map<string, number>;
}
interface Real {
  state: KeyState;
  events: RecordedEvent[];
  now: number;
  credentials: Map<string, number>;
  nextPrefix: number;
}

function apply(real: Real, command: KeyCommand): 'ok' | string {
  try {
    const now = new Date(real.now);
    const events = decide(command, real.state, now).map((e) => ({ ...e, occurred_at: now.toISOString(), tenant_id: 'ten_a' }) as RecordedEvent);
    real.events.push(...events);
    real.state = events.reduce(evolve, real.state);
    // The credentials as the projection writes them: every secret's end from the folded state.
    for (const s of real.state.secrets) real.credentials.set(`kw_live_${s.lookup_id}`, s.valid_until === null ? Infinity : Date.parse(s.valid_until));
    return 'ok';
  } catch (err) {
    return (err as KeyError).code;
  }
}

/** A command on the key: refused as the model says (not_found, then conflict once revoked), or applied. */
function applied(m: Model, out: string): boolean {
  if (!m.exists) expect(out).toBe('not_found');
  else if (m.revoked) expect(out).toBe('conflict');
  else expect(out).toBe('ok');
  return m.exists && !m.revoked;
}

const works = (creds: Map<string, number>, state: KeyState, prefix: string, now: number) =>
  (creds.get(prefix) ?? -Infinity) > now && statusOf(state, new Date(now)) === 'active';

class CreateCmd implements fc.Command<Model, Real> {
  check = () => true;
  run(m: Model, r: Real) {
    const prefix = `kw_live_${String(r.nextPrefix++).padStart(8, '0')}`;
    const out = apply(r, create({ prefix }));
    if (m.exists) expect(out).toBe('conflict');
    else {
      expect(out).toBe('ok');
      Object.assign(m, { exists: true, version: 1 });
      m.secrets.set(prefix, Infinity);
    }
  }
  toString = () => 'create';
}
class Toggle implements fc.Command<Model, Real> {
  constructor(readonly on: boolean) {}
  check = () => true;
  run(m: Model, r: Real) {
    if (!applied(m, apply(r, { type: this.on ? 'enable' : 'disable' }))) return;
    if (m.enabled !== this.on) m.version++;
    m.enabled = this.on;
  }
  toString = () => (this.on ? 'enable' : 'disable');
}
class Rotate implements fc.Command<Model, Real> {
  constructor(readonly grace: number) {}
  check = () => true;
  run(m: Model, r: Real) {
    const prefix = `kw_live_${String(r.nextPrefix++).padStart(8, '0')}`;
    const before = r.state.prefix;
    if (!applied(m, apply(r, { type: 'rotate', new_prefix: prefix, grace_period_seconds: this.grace }))) return;
    m.version++;
    // Every older secret ends at the new grace's end, or keeps a sooner end (no rotation extends a grace).
    const until = this.grace > 0 ? m.now + this.grace * 1000 : m.now;
    for (const [p, end] of m.secrets) m.secrets.set(p, Math.min(end, until));
    m.secrets.set(before, Math.min(m.secrets.get(before) ?? Infinity, until));
    m.secrets.set(prefix, Infinity);
  }
  toString = () => `rotate(${this.grace})`;
}
/** Ends the grace: afterwards only the current secret opens the key, and no older secret outlives it. */
class CompleteRotation implements fc.Command<Model, Real> {
  check = () => true;
  run(m: Model, r: Real) {
    const current = r.state.prefix;
    const out = apply(r, { type: 'complete_rotation' });
    if (!applied(m, out)) return;
    const older = [...m.secrets].filter(([p, end]) => p !== current && end > m.now);
    if (older.length > 0) m.version++;
    for (const [p] of older) m.secrets.set(p, m.now);
    for (const [p, end] of r.credentials) if (p !== current) expect(end).toBeLessThanOrEqual(r.now);
  }
  toString = () => 'completeRotation';
}
class Revoke implements fc.Command<Model, Real> {
  check = () => true;
  run(m: Model, r: Real) {
    if (!applied(m, apply(r, { type: 'revoke', reason: null }))) return;
    m.version++;
    m.revoked = true;
  }
  toString = () => 'revoke';
}
class Tick implements fc.Command<Model, Real> {
  constructor(readonly ms: number) {}
  check = () => true;
  run(m: Model, r: Real) {
    m.now += this.ms;
    r.now += this.ms;
  }
  toString = () => `tick(${this.ms})`;
}
class CheckSecrets implements fc.Command<Model, Real> {
  check = () => true;
  run(m: Model, r: Real) {
    expect(r.state.version).toBe(m.version);
    expect(r.state.version).toBe(r.events.length);
    expect(replay(r.state.id, r.events)).toEqual(r.state);
    for (const [prefix, until] of m.secrets) {
      const expected = m.exists && !m.revoked && m.enabled && until > m.now;
      expect(works(r.credentials, r.state, prefix, r.now)).toBe(expected);
    }
    if (m.revoked) for (const prefix of r.credentials.keys()) expect(works(r.credentials, r.state, prefix, r.now)).toBe(false);
  }
  toString = () => 'check';
}

it('model: revoked is final, versions step by one, secrets die on revoke, on rotation without grace and on completing a rotation, replay = live', () => {
  const commands = [
    fc.constant(new CreateCmd()),
    fc.boolean().map((b) => new Toggle(b)),
    fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 600 })).map((g) => new Rotate(g)),
    fc.constant(new CompleteRotation()),
    fc.constant(new Revoke()),
    fc.integer({ min: 1, max: 700_000 }).map((ms) => new Tick(ms)),
    fc.constant(new CheckSecrets()),
  ];
  fc.assert(
    fc.property(fc.commands(commands, { maxCommands: 60 }), (cmds) => {
      const model: Model = { exists: false, revoked: false, enabled: true, version: 0, now: T0.getTime(), secrets: new Map() };
      const real: Real = { state: initialKeyState('key_m'), events: [], now: T0.getTime(), credentials: new Map(), nextPrefix: 0 };
      fc.modelRun(() => ({ model, real }), cmds);
      new CheckSecrets().run(model, real);
    }),
    { numRuns: 300 },
  );
});
