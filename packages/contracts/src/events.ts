import { z } from 'zod';
import { Environment, RateLimitOverride, Scope, StoredMetadata } from './keys';

export const KEY_EVENT_TYPES = [
  'created',
  'updated',
  'enabled',
  'disabled',
  'rotated',
  'rotation_completed',
  'revoked',
  'expired',
  'used',
] as const;
export const KeyEventType = z.enum(KEY_EVENT_TYPES);
export type KeyEventType = z.infer<typeof KeyEventType>;

export const Actor = z.object({
  /** `member`: a tenant member signed in to the dashboard; `user` is kept for events written before members existed. */
  type: z.enum(['key', 'member', 'operator', 'user', 'system']),
  id: z.string(),
});
export type Actor = z.infer<typeof Actor>;

/**
 * Event payloads at their current schema version (`KEY_EVENT_VERSIONS`). A changed payload gets a
 * new version and an upcaster from the previous one (`UPCASTERS`); stored events are never
 * rewritten, every reader upcasts through `upcast`.
 */
export const KeyEventData = {
  created: z.object({
    name: z.string(),
    scopes: z.array(Scope),
    environment: Environment,
    expires_at: z.string().nullable(),
    rate_limit: RateLimitOverride.nullable(),
    metadata: StoredMetadata,
    /** A tenant's root key (made by the operator). Absent in events written before it existed: false. */
    root: z.boolean().optional(),
  }),
  updated: z.object({
    name: z.string().optional(),
    scopes: z.array(Scope).optional(),
    rate_limit: RateLimitOverride.nullable().optional(),
    metadata: StoredMetadata.optional(),
  }),
  enabled: z.object({}),
  disabled: z.object({}),
  rotated: z.object({
    previous_prefix: z.string(),
    /** Until when the previous secret keeps working; null when it stopped at once. */
    previous_valid_until: z.string().nullable(),
  }),
  /** A rotation's grace ended early (`POST /v1/keys/{id}/rotate/complete`): these older secrets stopped. */
  rotation_completed: z.object({ ended_prefixes: z.array(z.string()) }),
  revoked: z.object({ reason: z.string().nullable() }),
  expired: z.object({ expires_at: z.string() }),
  /**
   * v2: one per (key, secret) per interval from each gateway. `count` includes the rate-limited
   * calls; `scopes_used` are the scopes the admitted calls needed (null: unknown, upcast from v1,
   * never "unused"); `secret` says which secret was used (`previous`: the old one, in a grace).
   */
  used: z.object({
    count: z.number().int().min(1),
    rate_limited: z.number().int().min(0),
    first_at: z.string(),
    last_at: z.string(),
    scopes_used: z.array(Scope).nullable(),
    secret: z.enum(['current', 'previous']),
  }),
} satisfies Record<KeyEventType, z.ZodType>;
export type KeyEventDataOf<T extends KeyEventType> = z.infer<(typeof KeyEventData)[T]>;

/** The current schema version of each event type: what writers stamp and readers upcast to. */
export const KEY_EVENT_VERSIONS: Readonly<Record<KeyEventType, number>> = {
  created: 1,
  updated: 1,
  enabled: 1,
  disabled: 1,
  rotated: 1,
  rotation_completed: 1,
  revoked: 1,
  expired: 1,
  used: 2,
};

/** `used` v1, as gateways before schema version 2 published it. */
const UsedV1 = z.object({ count: z.number().int().min(1), first_used_at: z.string(), last_used_at: z.string() });

/**
 * Per type, `UPCASTERS[type][v]` turns a v payload into a v + 1 payload (Emmett's upcasting, one
 * path). A new version of a payload adds its step here, and its fixture to `EVENT_FIXTURES`.
 */
const UPCASTERS: { readonly [T in KeyEventType]?: Readonly<Record<number, (data: unknown) => unknown>> } = {
  used: {
    // v1 counted only admitted calls of the current secret, and did not know the scopes.
    1: (data) => {
      const v1 = UsedV1.parse(data);
      return { count: v1.count, rate_limited: 0, first_at: v1.first_used_at, last_at: v1.last_used_at, scopes_used: null, secret: 'current' };
    },
  },
};

/** Thrown for an event this reader cannot bring to the current version. */
export class EventVersionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EventVersionError';
  }
}

/**
 * Brings a payload stored or published at `version` to the current one. The one path every
 * reader takes: the event store, the relay, the audit log, the gateways and every consumer.
 */
export function upcast(type: KeyEventType, version: number, data: unknown): { schema_version: number; data: unknown } {
  const current = KEY_EVENT_VERSIONS[type];
  if (!Number.isInteger(version) || version < 1 || version > current) {
    throw new EventVersionError(`${type} events have schema versions 1..${current}; got ${String(version)}`);
  }
  let d = data;
  for (let v = version; v < current; v++) {
    const step = UPCASTERS[type]?.[v];
    if (!step) throw new EventVersionError(`no upcaster for ${type} v${v} → v${v + 1}`);
    d = step(d);
  }
  return { schema_version: current, data: d };
}

const envelopeBase = {
  id: z.string(),
  schema_version: z.number().int(),
  occurred_at: z.string(),
  tenant_id: z.string(),
  key_id: z.string(),
  prefix: z.string(),
  /** The event's position in its key's stream (lifecycle events); `used` events have none. */
  version: z.number().int().min(1).optional(),
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
    schema_version: number;
    occurred_at: string;
    tenant_id: string;
    key_id: string;
    prefix: string;
    version?: number;
    actor: Actor;
    data: KeyEventDataOf<T>;
  };
}[KeyEventType];
/** Lifecycle events: the key's own event-sourced history (`used` is not part of it). */
export type KeyLifecycleEvent = Exclude<KeyEvent, { type: 'used' }>;

const isKeyEventType = (t: unknown): t is KeyEventType => typeof t === 'string' && (KEY_EVENT_TYPES as readonly string[]).includes(t);

/**
 * Reads an event from the store or the bus: upcast to the current version, then validated. Throws
 * (zod's error, or EventVersionError) for anything else.
 */
export function parseKeyEvent(value: unknown): KeyEvent {
  if (typeof value === 'object' && value !== null) {
    const v = value as { type?: unknown; schema_version?: unknown; data?: unknown };
    if (isKeyEventType(v.type) && typeof v.schema_version === 'number') {
      return KeyEvent.parse({ ...v, ...upcast(v.type, v.schema_version, v.data) }) as KeyEvent;
    }
  }
  return KeyEvent.parse(value) as KeyEvent;
}

/** A payload of `type` read from storage: upcast and validated, the envelope left to the caller. */
export function parseKeyEventData<T extends KeyEventType>(type: T, version: number, data: unknown): KeyEventDataOf<T> {
  return KeyEventData[type].parse(upcast(type, version, data).data) as KeyEventDataOf<T>;
}

/** Builds every key event envelope that goes on the bus: the one place a schema version is stamped. */
export function keyEventEnvelope<T extends KeyEventType>(e: Omit<Extract<KeyEvent, { type: T }>, 'schema_version'>): Extract<KeyEvent, { type: T }> {
  return { ...e, schema_version: KEY_EVENT_VERSIONS[e.type] } as Extract<KeyEvent, { type: T }>;
}
