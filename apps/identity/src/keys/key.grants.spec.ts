import { ALL_SCOPES, RATE_LIMIT_CEILING_DEFAULTS, type Scope } from '@keyway/contracts';
import { decide, evolve, initialKeyState, liveSecrets, type GrantContext, type KeyCommand, type KeyState, type RecordedEvent } from './key.decider';
import { createCommand as create, T0 } from '../../test/key-commands';
import type { Grantor } from './key.grants';

/**
 * Grants, Given/When/Then on the pure decider: what the outside fuzz did with a `keys:write` key
 * (mint every scope at 1e9, raise its own limits, revoke the root key) must each be refused.
 */
const at = (s: number) => new Date(T0.getTime() + s * 1000);
const by = (scopes: Scope[], over: Partial<Grantor> = {}): GrantContext => ({
  by: { key_id: 'key_caller', scopes, environment: 'live', ...over },
  ceiling: RATE_LIMIT_CEILING_DEFAULTS,
});

function apply(state: KeyState, command: KeyCommand, now = T0, grant?: GrantContext): KeyState {
  return decide(command, state, now, grant)
    .map((e) => ({ ...e, occurred_at: now.toISOString(), tenant_id: 'ten_a' }) as RecordedEvent)
    .reduce(evolve, state);
}
const code = (f: () => unknown): unknown => {
  try {
    f();
  } catch (err) {
    return (err as { code?: string; extra?: Record<string, unknown> }).code;
  }
  return 'allowed';
};

describe('grants: a key gives only what it holds', () => {
  const keysWriter = by(['keys:write']);
  const everything = apply(initialKeyState('key_root'), create({ scopes: [...ALL_SCOPES], root: true }));

  it('may not create a key with a scope it lacks (insufficient_scope naming it)', () => {
    expect(() => decide(create({ scopes: ['keys:read', 'users:write'] }), initialKeyState('k'), T0, keysWriter)).toThrow(
      expect.objectContaining({ code: 'insufficient_scope', extra: expect.objectContaining({ required_scope: 'users:write' }) }),
    );
    // write covers read, and a subset is fine
    expect(code(() => decide(create({ scopes: ['keys:read'] }), initialKeyState('k'), T0, keysWriter))).toBe('allowed');
  });

  it('may not create a key of the other mode', () => {
    expect(code(() => decide(create({ environment: 'live', scopes: [] }), initialKeyState('k'), T0, by(['keys:write'], { environment: 'test' })))).toBe('forbidden');
  });

  it('may not set limits above the tenant ceiling, whoever asks', () => {
    const huge = create({ scopes: [], rate_limit: { per_minute: 1e9 } });
    expect(code(() => decide(huge, initialKeyState('k'), T0, keysWriter))).toBe('forbidden');
    expect(code(() => decide(huge, initialKeyState('k'), T0, { by: null, ceiling: RATE_LIMIT_CEILING_DEFAULTS }))).toBe('forbidden');
    const high = { by: null, ceiling: { ...RATE_LIMIT_CEILING_DEFAULTS, per_minute: 1e9 } };
    expect(code(() => decide(huge, initialKeyState('k'), T0, high))).toBe('allowed');
  });

  it('only the operator makes root keys', () => {
    expect(code(() => decide(create({ scopes: [], root: true }), initialKeyState('k'), T0, by([...ALL_SCOPES])))).toBe('forbidden');
  });

  it('may not rotate, disable, revoke or change a key holding a scope it lacks (the root key)', () => {
    const commands: KeyCommand[] = [
      { type: 'rotate', new_prefix: 'kw_live_bbbbbbbb', grace_period_seconds: 0 },
      { type: 'disable' },
      { type: 'revoke', reason: null },
      { type: 'update', changes: { name: 'mine now' } },
    ];
    for (const c of commands) expect(code(() => decide(c, everything, T0, keysWriter))).toBe('insufficient_scope');
    for (const c of commands) expect(code(() => decide(c, everything, T0, by([...ALL_SCOPES])))).toBe('allowed');
  });

  it('may not add to a key a scope it lacks itself, nor raise its own limits; lowering is fine', () => {
    const self = apply(initialKeyState('key_caller'), create({ scopes: ['keys:write'] }));
    expect(code(() => decide({ type: 'update', changes: { scopes: ['keys:write', 'users:write'] } }, self, T0, keysWriter))).toBe('insufficient_scope');
    expect(code(() => decide({ type: 'update', changes: { rate_limit: { per_minute: 101 } } }, self, T0, keysWriter))).toBe('forbidden');
    expect(code(() => decide({ type: 'update', changes: { rate_limit: { per_minute: 50 } } }, self, T0, keysWriter))).toBe('allowed');
    const lowered = apply(self, { type: 'update', changes: { rate_limit: { per_minute: 50 } } }, T0, keysWriter);
    // back to the defaults (null) would raise per_minute from 50 to 100
    expect(code(() => decide({ type: 'update', changes: { rate_limit: null } }, lowered, T0, keysWriter))).toBe('forbidden');
    // another key's limits may go up to the ceiling
    const other = apply(initialKeyState('key_other'), create({ scopes: ['keys:read'] }));
    expect(code(() => decide({ type: 'update', changes: { rate_limit: { per_minute: 5_000 } } }, other, T0, keysWriter))).toBe('allowed');
  });
});

describe('rotation ends every older secret, and never extends a grace', () => {
  const rotate = (s: KeyState, prefix: string, grace: number, now: Date) => apply(s, { type: 'rotate', new_prefix: prefix, grace_period_seconds: grace }, now);
  const k0 = apply(initialKeyState('k'), create());

  it('rotate with grace, rotate again: all three secrets live, and a revoke must reach all of them', () => {
    const k1 = rotate(k0, 'kw_live_bbbbbbbb', 3600, at(0));
    const k2 = rotate(k1, 'kw_live_cccccccc', 3600, at(10));
    expect(liveSecrets(k2, at(20)).sort()).toEqual(['aaaaaaaa', 'bbbbbbbb', 'cccccccc']);
  });

  it('a rotation without grace ends every older secret at once, even one inside an earlier grace', () => {
    const k1 = rotate(k0, 'kw_live_bbbbbbbb', 86_400, at(0));
    const k2 = rotate(k1, 'kw_live_cccccccc', 0, at(10));
    expect(liveSecrets(k2, at(10))).toEqual(['cccccccc']);
  });

  it('a later, longer grace does not extend an older, shorter one', () => {
    const k1 = rotate(k0, 'kw_live_bbbbbbbb', 60, at(0));
    const k2 = rotate(k1, 'kw_live_cccccccc', 86_400, at(10));
    expect(liveSecrets(k2, at(59)).sort()).toEqual(['aaaaaaaa', 'bbbbbbbb', 'cccccccc']);
    expect(liveSecrets(k2, at(61)).sort()).toEqual(['bbbbbbbb', 'cccccccc']);
  });
});

describe('root keys, also those made before the mark', () => {
  const legacy = (actorType: 'operator' | 'key'): RecordedEvent => ({
    type: 'created',
    prefix: 'kw_live_aaaaaaaa',
    occurred_at: T0.toISOString(),
    tenant_id: 'ten_a',
    actor: { type: actorType, id: 'x' },
    // Written before `root` existed: no such field.
    data: { name: 'Root key', scopes: [...ALL_SCOPES], environment: 'live', expires_at: null, rate_limit: null, metadata: {} },
  });
  it('a created event without `root` is a root key exactly when the operator made it (so a rebuild keeps the mark)', () => {
    expect(evolve(initialKeyState('k'), legacy('operator')).root).toBe(true);
    expect(evolve(initialKeyState('k'), legacy('key')).root).toBe(false);
  });
  it('new created events say it either way', () => {
    const [made] = decide(create({ scopes: [] }), initialKeyState('k'), T0);
    expect(made?.data).toMatchObject({ root: false });
    const [root] = decide(create({ scopes: [], root: true }), initialKeyState('k'), T0);
    expect(root?.data).toMatchObject({ root: true });
  });
});
