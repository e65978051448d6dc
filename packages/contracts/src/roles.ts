/**
 * Tenant members' roles and the scopes each one grants (DESIGN "Dashboard and members").
 *
 * Browser-safe on purpose: the dashboard imports this module to show and hide what a role may do,
 * so it imports nothing at run time (no zod, no Node built-ins). `keys.ts` holds the scope enum;
 * `roles.spec.ts` checks the two agree.
 */

export const ROLES = ['admin', 'developer', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

type RoleScope = `${'contacts' | 'journeys' | 'users' | 'keys' | 'audit'}:${'read' | 'write'}`;

/**
 * - `admin`: every scope, members included.
 * - `developer`: keys and data (contacts, journeys, keys: write; the audit trail: read), and may
 *   see who the members are (`users:read`), but never change them: no `users:write`, so a
 *   developer can neither add a member nor make anyone (themselves included) an admin.
 * - `viewer`: every `:read`, nothing else.
 * `write` implies `read` on the same resource, as for keys.
 */
export const ROLE_SCOPES: { readonly [R in Role]: readonly RoleScope[] } = {
  admin: ['contacts:read', 'contacts:write', 'journeys:read', 'journeys:write', 'users:read', 'users:write', 'keys:read', 'keys:write', 'audit:read', 'audit:write'],
  developer: ['contacts:read', 'contacts:write', 'journeys:read', 'journeys:write', 'users:read', 'keys:read', 'keys:write', 'audit:read'],
  viewer: ['contacts:read', 'journeys:read', 'users:read', 'keys:read', 'audit:read'],
};

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/** `write` covers `read` on the same resource (the rule of `grants` in keys.ts, without zod). */
function holds(granted: readonly string[], scope: string): boolean {
  return granted.includes(scope) || (scope.endsWith(':read') && granted.includes(`${scope.slice(0, -5)}:write`));
}

/**
 * Giving someone a role is a grant of its scopes: the first scope of `role` that `granted` does not
 * cover, or undefined when the caller may give it.
 */
export function missingScopeForRole(granted: readonly string[], role: Role): RoleScope | undefined {
  return ROLE_SCOPES[role].find((s) => !holds(granted, s));
}
