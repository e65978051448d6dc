import { z } from 'zod';
import { Environment, RateLimit, RateLimitOverride, Scope } from './keys';
import { CreateUserBody, UserView } from './users';

const TenantName = z.string().regex(/\S/, 'must not be blank').trim().min(1).max(200);

export const CreateTenantBody = z.strictObject({
  name: TenantName,
  /** The most any key of the tenant may be given; windows left out keep the defaults. */
  rate_limit_ceiling: RateLimitOverride.optional(),
  /** The tenant's first member, an admin, made with it (so someone can sign in to the dashboard). */
  admin: CreateUserBody.omit({ role: true }).optional(),
});
export type CreateTenantBody = z.infer<typeof CreateTenantBody>;

export const UpdateTenantBody = z
  .strictObject({ name: TenantName.optional(), rate_limit_ceiling: RateLimitOverride.nullable().optional() })
  .refine((b) => Object.keys(b).length > 0, { message: 'give at least one field to change' });
export type UpdateTenantBody = z.infer<typeof UpdateTenantBody>;

export const TenantView = z.object({ id: z.string(), name: z.string(), rate_limit_ceiling: RateLimit, created_at: z.string() });
export type TenantView = z.infer<typeof TenantView>;

/** A root key as the operator receives it: the secret, once. */
export const RootKey = z.object({ id: z.string(), prefix: z.string(), key: z.string(), scopes: z.array(Scope) });
export type RootKey = z.infer<typeof RootKey>;

export const CreatedTenant = z.object({ tenant: TenantView, root_key: RootKey, admin: UserView.optional() });
export type CreatedTenant = z.infer<typeof CreatedTenant>;

/**
 * `POST /admin/v1/tenants/{id}/root-key`: a root key of one mode (live unless asked). A key makes
 * keys of its own mode only, so a tenant's first test key comes from here (or a member's session).
 */
export const IssueRootKeyBody = z.strictObject({ environment: Environment.optional() });
export type IssueRootKeyBody = z.infer<typeof IssueRootKeyBody>;

/** The new root key, and the old root keys of that mode it revoked. */
export const IssuedRootKey = z.object({ root_key: RootKey, revoked_key_ids: z.array(z.string()) });
export type IssuedRootKey = z.infer<typeof IssuedRootKey>;
