import { z } from 'zod';
import { Actor, KEY_EVENT_TYPES } from './events';
import type { MemberEventType } from './members';
import type { TenantEventType } from './tenant-events';
import { PageQuery } from './pagination';
import { STREAMS } from './subjects';

/** A member event's type in the trail: `member.<type>` (a key event's is its own type). */
export const MEMBER_AUDIT_TYPES = [
  'member.created',
  'member.updated',
  'member.deleted',
  'member.signed_in',
  'member.sign_in_failed',
] as const satisfies ReadonlyArray<`member.${MemberEventType}`>;
/** A tenant event's type in the trail: `tenant.<type>` (what an operator changed on the tenant). */
export const TENANT_AUDIT_TYPES = ['tenant.updated'] as const satisfies ReadonlyArray<`tenant.${TenantEventType}`>;
/** Every entry type the trail holds: key lifecycle events, `member.*` and `tenant.*` events. */
export const AuditEntryType = z.enum([...KEY_EVENT_TYPES, ...MEMBER_AUDIT_TYPES, ...TENANT_AUDIT_TYPES]);
export type AuditEntryType = z.infer<typeof AuditEntryType>;

/**
 * One entry of a tenant's audit trail (`GET /v1/audit-events`, `GET /v1/keys/{id}/logs`): a key
 * lifecycle event or a member event as the trail shows it. A key's entry: `environment` is the
 * key's mode, from its prefix; `changes` is the event's payload. A member's entry (`member.*`):
 * `key_id` and `prefix` are null, `environment` is `live` (members are the tenant's, not a mode's:
 * a test key does not see them), `changes` is `{member_id, ...}` with the event's payload. A
 * tenant's entry (`tenant.*`, an operator's change): likewise no key and `live`, `changes` the
 * event's payload. Never a secret, a password, a session or a hash.
 */
export const AuditEntry = z.object({
  id: z.string(),
  type: AuditEntryType,
  occurred_at: z.string(),
  actor: Actor,
  /** null for a member's or a tenant's entry. */
  key_id: z.string().nullable(),
  /** null for a member's or a tenant's entry. */
  prefix: z.string().nullable(),
  environment: z.enum(['live', 'test']),
  changes: z.record(z.string(), z.unknown()),
});
export type AuditEntry = z.infer<typeof AuditEntry>;

/** `GET /v1/audit-events` filters (with the page). `from` is inclusive, `to` exclusive. */
export const AuditEventsQuery = PageQuery.extend({
  key_id: z.string().min(1).max(100).optional(),
  type: AuditEntryType.optional(),
  actor_type: Actor.shape.type.optional(),
  actor_id: z.string().min(1).max(100).optional(),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
});
export type AuditEventsQuery = z.infer<typeof AuditEventsQuery>;

/**
 * `GET /v1/audit-events/verify`: the walk of the tenant's hash chain against its latest published
 * head. `entries` counts the whole chain (both modes), or for a test key its test entries only;
 * `head` is the last link, hex (for a test key, the last test entry's link). `first_bad.id`
 * is the first entry that breaks the chain (null when none can be named: a deleted tail, or an
 * entry of the other mode for a mode-bound key).
 */
export const AuditVerification = z.object({
  verified: z.boolean(),
  /** When verified: how many entries the chain holds. */
  entries: z.number().int().optional(),
  /** When verified: the last link, hex (null for an empty trail). */
  head: z.string().nullable().optional(),
  /** When not verified: the first entry that breaks the chain, and why. */
  first_bad: z.object({ id: z.string().nullable(), reason: z.string() }).optional(),
});
/** One object for the document (every response is one); the two shapes it takes, for TypeScript. */
export type AuditVerification =
  | { verified: true; entries: number; head: string | null }
  | { verified: false; first_bad: { id: string | null; reason: string } };

/** A tenant's chain head as audit-log publishes it to `KEYWAY_AUDIT_HEADS` (`keyway.audit.heads.<tenant>`). */
export const AuditHead = z.object({
  tenant_id: z.string(),
  /** The number of entries in the chain: the last entry's position. */
  position: z.number().int().min(0),
  /** The last link, hex. */
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  linked_at: z.string(),
});
export type AuditHead = z.infer<typeof AuditHead>;

/**
 * The subject of a tenant's published head. A tenant id that is not a plain NATS token (letters,
 * digits, `_`, `-`) is carried base64url after a `~`, which no plain id contains.
 */
export function auditHeadSubject(tenantId: string): string {
  const token = /^[A-Za-z0-9_-]+$/.test(tenantId) ? tenantId : `~${Buffer.from(tenantId, 'utf8').toString('base64url')}`;
  return STREAMS.auditHeads.subjects[0].replace('>', token);
}
