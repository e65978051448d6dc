import { z } from 'zod';
import { Environment, Metadata, RateLimitOverride, Scope } from './keys';

export const KEY_EVENT_TYPES = [
  'created',
  'updated',
  'enabled',
  'disabled',
  'rotated',
  'revoked',
  'expired',
  'used',
] as const;
export const KeyEventType = z.enum(KEY_EVENT_TYPES);
export type KeyEventType = z.infer<typeof KeyEventType>;

export const Actor = z.object({
  type: z.enum(['key', 'operator', 'user', 'system']),
  id: z.string(),
});
export type Actor = z.infer<typeof Actor>;

/** Event payloads, version 1. A changed payload gets a new schema_version and an upcaster. */
export const KeyEventData = {
  created: z.object({
    name: z.string(),
    scopes: z.array(Scope),
    environment: Environment,
    expires_at: z.string().nullable(),
    rate_limit: RateLimitOverride.nullable(),
    metadata: Metadata,
    /** A tenant's root key (made by the operator). Absent in events written before it existed: false. */
    root: z.boolean().optional(),
  }),
  updated: z.object({
    name: z.string().optional(),
    scopes: z.array(Scope).optional(),
    rate_limit: RateLimitOverride.nullable().optional(),
    metadata: Metadata.optional(),
  }),
  enabled: z.object({}),
  disabled: z.object({}),
  rotated: z.object({
    previous_prefix: z.string(),
    /** Until when the previous secret keeps working; null when it stopped at once. */
    previous_valid_until: z.string().nullable(),
  }),
  revoked: z.object({ reason: z.string().nullable() }),
  expired: z.object({ expires_at: z.string() }),
  used: z.object({
    count: z.number().int().min(1),
    first_used_at: z.string(),
    last_used_at: z.string(),
  }),
} satisfies Record<KeyEventType, z.ZodType>;
export type KeyEventDataOf<T extends KeyEventType> = z.infer<(typeof KeyEventData)[T]>;

const envelopeBase = {
  id: z.string(),
  schema_version: z.literal(1),
  occurred_at: z.string(),
  tenant_id: z.string(),
  key_id: z.string(),
  prefix: z.string(),
  actor: Actor,
};

/** The envelope of every key event, on JetStream and in the audit log. */
export const KeyEvent = z.discriminatedUnion(
  'type',
  KEY_EVENT_TYPES.map((type) =>
    z.object({ ...envelopeBase, type: z.literal(type), data: KeyEventData[type] }),
  ) as unknown as [z.ZodObject, ...z.ZodObject[]],
);
export type KeyEvent = {
  [T in KeyEventType]: {
    id: string;
    type: T;
    schema_version: 1;
    occurred_at: string;
    tenant_id: string;
    key_id: string;
    prefix: string;
    actor: Actor;
    data: KeyEventDataOf<T>;
  };
}[KeyEventType];
/** Lifecycle events: the key's own event-sourced history (`used` is not part of it). */
export type KeyLifecycleEvent = Exclude<KeyEvent, { type: 'used' }>;

export function parseKeyEvent(value: unknown): KeyEvent {
  return KeyEvent.parse(value) as KeyEvent;
}
