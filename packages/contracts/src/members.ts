import { z } from 'zod';
import { Actor, EventVersionError } from './events';
import { MemberRole } from './users';

/**
 * Tenant members' lifecycle events, on `keyway.members.<type>` in the stream `KEYWAY` (kept for
 * good, beside the keys' lifecycle), published by identity through its outbox. Never a password,
 * a password hash, a session id or a session hash.
 */
export const MemberEventData = {
  created: z.object({ name: z.string(), email: z.string(), role: MemberRole }),
  /** Only what changed; a new password shows as `password_changed: true`, never the password. */
  updated: z.object({
    name: z.string().optional(),
    email: z.string().optional(),
    role: MemberRole.optional(),
    password_changed: z.literal(true).optional(),
    /** Sessions the change ended (a password change ends the member's other sessions). */
    sessions_ended: z.number().int().min(0).optional(),
  }),
  deleted: z.object({ email: z.string(), role: MemberRole }),
  signed_in: z.object({ client_address: z.string() }),
  /** The member's email matched and the password did not (unknown emails belong to no tenant's trail). */
  sign_in_failed: z.object({ client_address: z.string() }),
} satisfies Record<string, z.ZodType>;
export type MemberEventType = keyof typeof MemberEventData;
export const MEMBER_EVENT_TYPES = Object.keys(MemberEventData) as MemberEventType[];
export type MemberEventDataOf<T extends MemberEventType> = z.infer<(typeof MemberEventData)[T]>;
export const MEMBER_EVENT_VERSIONS: Readonly<Record<MemberEventType, number>> = { created: 1, updated: 1, deleted: 1, signed_in: 1, sign_in_failed: 1 };

export const memberEventSubject = (type: MemberEventType): string => `keyway.members.${type}`;

const envelopeBase = {
  /** Also the JetStream message id: a republished event is de-duplicated. */
  id: z.string(),
  schema_version: z.number().int().min(1),
  occurred_at: z.string(),
  tenant_id: z.string(),
  member_id: z.string(),
  actor: Actor,
};

export const MemberEvent = z.discriminatedUnion(
  'type',
  MEMBER_EVENT_TYPES.map((type) => z.object({ ...envelopeBase, type: z.literal(type), data: MemberEventData[type] })) as unknown as [z.ZodObject, ...z.ZodObject[]],
);
export type MemberEvent = {
  [T in MemberEventType]: { id: string; type: T; schema_version: number; occurred_at: string; tenant_id: string; member_id: string; actor: Actor; data: MemberEventDataOf<T> };
}[MemberEventType];

/** Builds a member event envelope: the one place its schema version is stamped. */
export function memberEventEnvelope<T extends MemberEventType>(e: Omit<Extract<MemberEvent, { type: T }>, 'schema_version'>): Extract<MemberEvent, { type: T }> {
  return { ...e, schema_version: MEMBER_EVENT_VERSIONS[e.type] } as Extract<MemberEvent, { type: T }>;
}

/** Reads a member event from the bus, validated; an unknown version throws EventVersionError. */
export function parseMemberEvent(value: unknown): MemberEvent {
  const v = value as { type?: unknown; schema_version?: unknown } | null;
  if (typeof v === 'object' && v !== null && typeof v.type === 'string' && v.type in MEMBER_EVENT_VERSIONS) {
    const current = MEMBER_EVENT_VERSIONS[v.type as MemberEventType];
    if (v.schema_version !== current) throw new EventVersionError(`member ${v.type} events have schema version ${current}; got ${String(v.schema_version)}`);
  }
  return MemberEvent.parse(value) as MemberEvent;
}
