import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ALL_SCOPES, grants } from './keys';
import { missingScopeForRole, ROLE_SCOPES, ROLES } from './roles';

describe('roles', () => {
  it('name real scopes only: admin holds every one, viewer every read, developer keys and data but not members', () => {
    for (const role of ROLES) for (const s of ROLE_SCOPES[role]) expect(ALL_SCOPES).toContain(s);
    expect([...ROLE_SCOPES.admin].sort()).toEqual([...ALL_SCOPES].sort());
    expect([...ROLE_SCOPES.viewer].sort()).toEqual(ALL_SCOPES.filter((s) => s.endsWith(':read')).sort());
    for (const s of ['contacts:write', 'journeys:write', 'keys:write', 'audit:read', 'users:read'] as const) expect(grants(ROLE_SCOPES.developer, s)).toBe(true);
    expect(grants(ROLE_SCOPES.developer, 'users:write')).toBe(false);
  });

  it('a grant of a role needs every scope of it; write covers read', () => {
    expect(missingScopeForRole([...ALL_SCOPES], 'admin')).toBeUndefined();
    expect(missingScopeForRole(['users:write'], 'viewer')).toBe('contacts:read');
    expect(missingScopeForRole([...ROLE_SCOPES.developer], 'admin')).toBe('users:write');
    expect(missingScopeForRole(['contacts:write', 'journeys:write', 'users:write', 'keys:write', 'audit:write'], 'viewer')).toBeUndefined();
  });

  it('is browser-safe: the module imports nothing (the dashboard loads it as is)', () => {
    const source = readFileSync(join(__dirname, 'roles.ts'), 'utf8');
    expect(source).not.toMatch(/^\s*import\s/m);
    expect(source).not.toMatch(/\brequire\(/);
  });
});
