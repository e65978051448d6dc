import { z } from 'zod';
import { MemberRole } from './users';

/**
 * The session cookie: an opaque id of 32 random bytes (256 bits), base64url, named `kw_session`
 * (DESIGN's contract). A gateway that serves only https may opt in to `__Host-kw_session`
 * (SESSION_COOKIE_HOST_PREFIX=true, with Secure): the browser then keeps it only if it came Secure,
 * with `Path=/` and no `Domain`, from a secure origin, so a sibling subdomain or a plain-http
 * answer cannot plant or shadow it. A gateway reads exactly the one name its configuration gives,
 * never the other.
 */
export const SESSION_COOKIE = 'kw_session';
export const SECURE_SESSION_COOKIE = '__Host-kw_session';
export const sessionCookieName = (opts: { secure: boolean; hostPrefix: boolean }): string => (opts.secure && opts.hostPrefix ? SECURE_SESSION_COOKIE : SESSION_COOKIE);
export const CSRF_HEADER = 'x-csrf-token';
/** Sliding: a session unused this long is over. */
export const SESSION_IDLE_MS = 30 * 60_000;
/** However it is used, a session ends this long after sign-in. */
export const SESSION_ABSOLUTE_MS = 12 * 3_600_000;
/** Identity moves a session's last-seen time at most this often (a sliding expiry without a write per request). */
export const SESSION_TOUCH_MS = 60_000;

/** `POST /auth/v1/session`. Unknown fields are refused, as everywhere. */
export const SignInBody = z.strictObject({
  email: z.string().min(1).max(320),
  password: z.string().min(1).max(1024),
  tenant_id: z.string().min(1).max(64).optional(),
});
export type SignInBody = z.infer<typeof SignInBody>;

export const SessionView = z.object({
  member: z.object({ id: z.string(), name: z.string(), email: z.string() }),
  tenant: z.object({ id: z.string(), name: z.string() }),
  role: MemberRole,
  /** Send it back as `X-CSRF-Token` on every change made with the session. */
  csrf_token: z.string(),
  /** When the session ends at the latest (12 h after sign-in); it ends earlier after 30 min unused. */
  expires_at: z.string(),
});
export type SessionView = z.infer<typeof SessionView>;

/** `409 tenant_required`: the tenants whose member the credentials matched. */
export const TenantChoice = z.object({ id: z.string(), name: z.string() });

/**
 * What identity tells the gateways about one session, found by the hash of its id (the id itself
 * never leaves the gateway that minted it). Internal bus only, never an HTTP body.
 */
export const SessionRecord = z.object({
  member_id: z.string(),
  tenant_id: z.string(),
  role: MemberRole,
  name: z.string(),
  email: z.string(),
  tenant_name: z.string(),
  /** The sliding end (last seen + 30 min, as identity last recorded it) and the absolute end. */
  idle_expires_at: z.string(),
  expires_at: z.string(),
});
export type SessionRecord = z.infer<typeof SessionRecord>;

/** Gateway → identity: sign in; the gateway minted the id and sends only its hash. */
export const SignInRequest = SignInBody.extend({
  client_address: z.string().max(64),
  session_hash: z.string().regex(/^[0-9a-f]{64}$/),
});
export type SignInRequest = z.infer<typeof SignInRequest>;
export const SessionHashRequest = z.object({ session_hash: z.string().regex(/^[0-9a-f]{64}$/) });
export const SessionReply = z.object({ record: SessionRecord.nullable() });
export type SessionReply = z.infer<typeof SessionReply>;

/**
 * `POST /auth/v1/password`: a signed-in member changes their own password with the current one
 * (any role: a viewer too). The new one follows the members' rule (8 to 1,024 characters, users.ts).
 */
export const ChangePasswordBody = z.strictObject({
  current_password: z.string().min(1).max(1024),
  new_password: z.string().min(8).max(1024),
});
export type ChangePasswordBody = z.infer<typeof ChangePasswordBody>;

/** Gateway → identity: the change, for the session behind `session_hash`, counted per (email, client address) as sign-in is. */
export const ChangePasswordRequest = ChangePasswordBody.extend({
  client_address: z.string().max(64),
  session_hash: z.string().regex(/^[0-9a-f]{64}$/),
});
export type ChangePasswordRequest = z.infer<typeof ChangePasswordRequest>;
