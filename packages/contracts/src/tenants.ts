import { z } from 'zod';
import { Environment, KeyStatus, RateLimit, RateLimitOverride, Scope } from './keys';
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

// --- Incident tools (DESIGN, Operations: the operator API) --------------------------------------

/**
 * A key's public prefix, `kw_<env>_<lookup id>`, and nothing longer: a whole key pasted by mistake
 * is refused here (the CLI cuts it to its prefix first), so a secret never reaches a log or a bus.
 */
export const KeyPrefixParam = z.string().regex(/^kw_(live|test)_[a-z0-9]{8}$/, 'a key prefix: kw_live_ or kw_test_ and 8 lowercase letters or digits (never the whole key)');

/** `GET /admin/v1/keys?prefix=`: the key a prefix names, in any tenant (the current or an older secret's). */
export const FindKeyQuery = z.strictObject({ prefix: KeyPrefixParam });
export type FindKeyQuery = z.infer<typeof FindKeyQuery>;

/** A key as an operator finds it: who owns it and what it may do; never a secret or a hash. */
export const OperatorKeyView = z.object({
  id: z.string(),
  tenant: z.object({ id: z.string(), name: z.string().nullable() }),
  name: z.string(),
  /** The key's current prefix (it differs from the one asked for when that one was rotated away). */
  prefix: z.string(),
  environment: Environment,
  status: KeyStatus,
  scopes: z.array(Scope),
  root: z.boolean(),
  created_at: z.string(),
  last_used_at: z.string().nullable(),
});
export type OperatorKeyView = z.infer<typeof OperatorKeyView>;

/** At most one: a prefix's look-up id names one credential. Empty when none does. */
export const FoundKeys = z.object({ data: z.array(OperatorKeyView) });
export type FoundKeys = z.infer<typeof FoundKeys>;

/** `POST /admin/v1/keys/{id}/revoke`: why, always (e.g. `leaked`); it goes into the tenant's trail. */
export const AdminRevokeKeyBody = z.strictObject({ reason: z.string().trim().min(1, 'say why (e.g. leaked)').max(500) });
export type AdminRevokeKeyBody = z.infer<typeof AdminRevokeKeyBody>;

/** One of identity's outbox relays as `GET /admin/v1/relay` reports it. */
export const RelayOutboxStatus = z.object({
  /** The relay's name (its checkpoint and lock): `jetstream` for key events, `members` for member and tenant events. */
  name: z.string(),
  /** Committed rows not yet acknowledged by JetStream. */
  backlog: z.number().int(),
  /** When the oldest of them was written (null: none waiting). */
  oldest_unpublished_at: z.string().nullable(),
  /** Seconds since then: how far JetStream is behind the database (0 when nothing waits). */
  lag_seconds: z.number(),
  /** The Postgres session holding the relay's lock (null: no replica relays). */
  leader: z
    .object({
      /** The identity replica, when the replica answering is the one (else null: see `client`). */
      replica: z.string().nullable(),
      /** The leader's database session: its client address and port, and since when. */
      client: z.string().nullable(),
      pid: z.number().int(),
      since: z.string().nullable(),
    })
    .nullable(),
});
export type RelayOutboxStatus = z.infer<typeof RelayOutboxStatus>;

export const RelayStatus = z.object({
  relays: z.array(RelayOutboxStatus),
  /** The identity replica that answered. */
  answered_by: z.string(),
});
export type RelayStatus = z.infer<typeof RelayStatus>;
