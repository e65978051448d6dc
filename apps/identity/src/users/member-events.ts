import { memberEventEnvelope, memberEventSubject, newId, type Actor, type MemberEventDataOf, type MemberEventType } from '@keyway/contracts';
import type { DataSource } from 'typeorm';
import { MEMBER_OUTBOX_TABLE } from '../migrations/1796083400000-members-and-sessions';

/**
 * Writes a member event into identity's member outbox, in the caller's transaction: it reaches
 * JetStream (`keyway.members.<type>`, stream KEYWAY) if and only if the change commits.
 */
export async function recordMemberEvent<T extends MemberEventType>(
  tx: Pick<DataSource, 'query'>,
  e: { type: T; tenant_id: string; member_id: string; actor: Actor; data: MemberEventDataOf<T>; at?: Date },
): Promise<void> {
  const envelope = memberEventEnvelope({
    id: newId('event'),
    type: e.type,
    occurred_at: (e.at ?? new Date()).toISOString(),
    tenant_id: e.tenant_id,
    member_id: e.member_id,
    actor: e.actor,
    data: e.data,
  } as never);
  await tx.query(`INSERT INTO ${MEMBER_OUTBOX_TABLE} (id, subject, payload) VALUES ($1, $2, $3)`, [envelope.id, memberEventSubject(e.type), JSON.stringify(envelope)]);
}
