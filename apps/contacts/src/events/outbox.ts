import { domainEventEnvelope, domainEventSubject, newId, type DomainEventDataOf, type DomainEventType } from '@keyway/contracts';
import type { EntityManager } from 'typeorm';
import { OUTBOX_TABLE } from '../migrations/1764806400000-modes-upserts-events';
import type { Caller } from '../shared/caller';

export interface Change<T extends DomainEventType = DomainEventType> {
  type: T;
  resourceId: string;
  data: DomainEventDataOf<T>;
}

/**
 * Writes domain events to the outbox, inside the caller's transaction: they reach JetStream
 * (through the relay) if and only if the change commits.
 */
export async function recordChanges(m: EntityManager, caller: Caller, changes: readonly Change[]): Promise<void> {
  if (changes.length === 0) return;
  const occurred_at = new Date().toISOString();
  const params: unknown[] = [];
  const rows = changes.map((c) => {
    const event = domainEventEnvelope({
      id: newId('event'),
      type: c.type,
      occurred_at,
      tenant_id: caller.tenantId,
      environment: caller.mode,
      resource_id: c.resourceId,
      actor: caller.actor,
      data: c.data,
    } as Parameters<typeof domainEventEnvelope>[0]);
    params.push(event.id, domainEventSubject(c.type), JSON.stringify(event));
    const n = params.length;
    return `($${n - 2}, $${n - 1}, $${n}::jsonb)`;
  });
  await m.query(`INSERT INTO ${OUTBOX_TABLE} (id, subject, payload) VALUES ${rows.join(', ')}`, params);
}
