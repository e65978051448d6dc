import { domainEventEnvelope, domainEventSubject, newId, type DomainEventDataOf, type JourneySummary, type JourneyView } from '@keyway/contracts';
import type { EntityManager } from 'typeorm';
import type { Caller } from '../caller';
import { OUTBOX_TABLE } from '../migrations/1764806460000-domain-events';

type JourneyEventType = 'journeys.created' | 'journeys.converted';

/** A journey as its events carry it: without the embedded lists, so an event stays small. */
export function journeySummary(v: JourneyView): JourneySummary {
  const { touchpoints: _t, conversions: _c, ...summary } = v;
  return summary;
}

/**
 * Writes one `keyway.journeys.<type>` event to the outbox in the caller's transaction, so the
 * event exists exactly when the change it announces was committed; the relay publishes it with its
 * id as the JetStream message id (a republish is de-duplicated).
 */
export async function recordJourneyEvent<T extends JourneyEventType>(
  m: EntityManager,
  caller: Caller,
  type: T,
  journeyId: string,
  data: DomainEventDataOf<T>,
): Promise<void> {
  const envelope = domainEventEnvelope<JourneyEventType>({
    id: newId('event'),
    type,
    occurred_at: new Date().toISOString(),
    tenant_id: caller.tenantId,
    environment: caller.mode,
    resource_id: journeyId,
    actor: caller.actor,
    data,
  } as Parameters<typeof domainEventEnvelope<JourneyEventType>>[0]);
  await m.query(`INSERT INTO ${OUTBOX_TABLE} (id, subject, payload) VALUES ($1, $2, $3)`, [envelope.id, domainEventSubject(type), JSON.stringify(envelope)]);
}
