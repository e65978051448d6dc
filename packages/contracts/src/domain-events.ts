import { z } from 'zod';
import { AccountView, ContactView } from './contacts';
import { Actor, EventVersionError } from './events';
import { ConversionView, JourneySummary } from './journeys';
import { Environment } from './keys';

/** What a `deleted` event carries: the record is gone, so only who it was. */
const Deleted = z.object({ id: z.string(), external_id: z.string().nullable() });

/**
 * Domain events (DESIGN "Domain events"): contacts' and journeys' own changes, on the stream
 * `KEYWAY_DOMAIN` (STREAMS.domain), subject `keyway.<type>` (`keyway.contacts.created`, …). Each
 * type's payload at its current schema version (DOMAIN_EVENT_VERSIONS); a changed payload gets a
 * new version, as key events do. `created` and `updated` carry the record as the API answers it
 * after the change, so a consumer can mirror it without calling back.
 * A service adds its types here (one entry, and one in DOMAIN_EVENT_VERSIONS).
 */
export const DomainEventData = {
  'contacts.created': ContactView,
  'contacts.updated': ContactView,
  'contacts.deleted': Deleted,
  'accounts.created': AccountView,
  'accounts.updated': AccountView,
  'accounts.deleted': Deleted,
  /** A journey began (with the touchpoints its POST carried). */
  'journeys.created': JourneySummary,
  /** A journey recorded a conversion (a visitor may convert several times): the journey after it, and the conversion. */
  'journeys.converted': z.object({ journey: JourneySummary, conversion: ConversionView }),
} satisfies Record<string, z.ZodType>;
export type DomainEventType = keyof typeof DomainEventData;
export const DOMAIN_EVENT_TYPES = Object.keys(DomainEventData) as DomainEventType[];
export type DomainEventDataOf<T extends DomainEventType> = z.infer<(typeof DomainEventData)[T]>;

export const DOMAIN_EVENT_VERSIONS: Readonly<Record<DomainEventType, number>> = {
  'contacts.created': 1,
  'contacts.updated': 1,
  'contacts.deleted': 1,
  'accounts.created': 1,
  'accounts.updated': 1,
  'accounts.deleted': 1,
  'journeys.created': 1,
  'journeys.converted': 1,
};

/** `keyway.contacts.created`, …: inside STREAMS.domain's subjects, disjoint from `keyway.rpc.>`. */
export const domainEventSubject = (type: DomainEventType): string => `keyway.${type}`;

const envelopeBase = {
  /** Also the JetStream message id: a republished event is de-duplicated. */
  id: z.string(),
  schema_version: z.number().int().min(1),
  occurred_at: z.string(),
  tenant_id: z.string(),
  /** The mode of the record: a test contact's events say `test`, and only test keys see it. */
  environment: Environment,
  /** The id of the record the event is about (`ct_…`, `acc_…`, `jr_…`). */
  resource_id: z.string(),
  actor: Actor,
};

/** The envelope of every domain event, the same shape as key events' (`KeyEvent`). */
export const DomainEvent = z.discriminatedUnion(
  'type',
  DOMAIN_EVENT_TYPES.map((type) => z.object({ ...envelopeBase, type: z.literal(type), data: DomainEventData[type] })) as unknown as [z.ZodObject, ...z.ZodObject[]],
);
export type DomainEvent = {
  [T in DomainEventType]: {
    id: string;
    type: T;
    schema_version: number;
    occurred_at: string;
    tenant_id: string;
    environment: Environment;
    resource_id: string;
    actor: Actor;
    data: DomainEventDataOf<T>;
  };
}[DomainEventType];

/** Builds a domain event envelope: the one place its schema version is stamped. */
export function domainEventEnvelope<T extends DomainEventType>(e: Omit<Extract<DomainEvent, { type: T }>, 'schema_version'>): Extract<DomainEvent, { type: T }> {
  return { ...e, schema_version: DOMAIN_EVENT_VERSIONS[e.type] } as Extract<DomainEvent, { type: T }>;
}

/**
 * Reads a domain event from the bus, validated. Every type is at version 1 so far: an event of a
 * version this reader does not know throws EventVersionError (redeliver it later, never drop it).
 */
export function parseDomainEvent(value: unknown): DomainEvent {
  const v = value as { type?: unknown; schema_version?: unknown } | null;
  if (typeof v === 'object' && v !== null && typeof v.type === 'string' && v.type in DOMAIN_EVENT_VERSIONS) {
    const current = DOMAIN_EVENT_VERSIONS[v.type as DomainEventType];
    if (v.schema_version !== current) throw new EventVersionError(`${v.type} events have schema version ${current}; got ${String(v.schema_version)}`);
  }
  return DomainEvent.parse(value) as DomainEvent;
}
