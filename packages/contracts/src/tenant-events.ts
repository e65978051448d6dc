import { z } from 'zod';
import { Actor, EventVersionError } from './events';
import { RateLimitOverride } from './keys';

/**
 * Tenant-level events an operator causes (DESIGN, Operations: admin actions are recorded in the
 * tenant's trail, actor `operator`). On `keyway.tenants.<type>` in the stream `KEYWAY`, published by
 * identity through its outbox. A key an operator revokes is a plain `keyway.keys.revoked` with
 * actor `{type: 'operator'}`; a root key an operator issues is a `keyway.keys.created` likewise.
 */
export const TenantEventData = {
  /** Only what changed. */
  updated: z.object({
    name: z.string().optional(),
    /** The ceiling as the operator set it (the windows it names; null: back to the defaults). */
    rate_limit_ceiling: RateLimitOverride.nullable().optional(),
  }),
} satisfies Record<string, z.ZodType>;
export type TenantEventType = keyof typeof TenantEventData;
export const TENANT_EVENT_TYPES = Object.keys(TenantEventData) as TenantEventType[];
export type TenantEventDataOf<T extends TenantEventType> = z.infer<(typeof TenantEventData)[T]>;
export const TENANT_EVENT_VERSIONS: Readonly<Record<TenantEventType, number>> = { updated: 1 };

export const tenantEventSubject = (type: TenantEventType): string => `keyway.tenants.${type}`;

const envelopeBase = {
  /** Also the JetStream message id: a republished event is de-duplicated. */
  id: z.string(),
  schema_version: z.number().int().min(1),
  occurred_at: z.string(),
  tenant_id: z.string(),
  actor: Actor,
};

export const TenantEvent = z.discriminatedUnion(
  'type',
  TENANT_EVENT_TYPES.map((type) => z.object({ ...envelopeBase, type: z.literal(type), data: TenantEventData[type] })) as unknown as [z.ZodObject, ...z.ZodObject[]],
);
export type TenantEvent = {
  [T in TenantEventType]: { id: string; type: T; schema_version: number; occurred_at: string; tenant_id: string; actor: Actor; data: TenantEventDataOf<T> };
}[TenantEventType];

/** Builds a tenant event envelope: the one place its schema version is stamped. */
export function tenantEventEnvelope<T extends TenantEventType>(e: Omit<Extract<TenantEvent, { type: T }>, 'schema_version'>): Extract<TenantEvent, { type: T }> {
  return { ...e, schema_version: TENANT_EVENT_VERSIONS[e.type] } as Extract<TenantEvent, { type: T }>;
}

/** Reads a tenant event from the bus, validated; an unknown version throws EventVersionError. */
export function parseTenantEvent(value: unknown): TenantEvent {
  const v = value as { type?: unknown; schema_version?: unknown } | null;
  if (typeof v === 'object' && v !== null && typeof v.type === 'string' && v.type in TENANT_EVENT_VERSIONS) {
    const current = TENANT_EVENT_VERSIONS[v.type as TenantEventType];
    if (v.schema_version !== current) throw new EventVersionError(`tenant ${v.type} events have schema version ${current}; got ${String(v.schema_version)}`);
  }
  return TenantEvent.parse(value) as TenantEvent;
}
