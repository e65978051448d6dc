import { type AuditEntry, parseKeyEvent, type KeyEvent } from '@keyway/contracts';
import { z } from 'zod';
import type { ChainContent } from '../chain/chain';
import type { AuditEventEntity } from './audit-event.entity';

/** One key event as it arrived, with the stream sequence it arrived at. */
export interface AuditRecord {
  event: KeyEvent;
  streamSeq: number;
}

// The contract only says "string"; Postgres would reject a batch over an unparsable timestamp,
// so such an event is refused here, where refusing terminates only that message.
const Timestamp = z.iso.datetime({ offset: true });
// jsonb cannot hold U+0000; one such string would fail the whole multi-row INSERT.
const NUL = /\\u0000/;

/** Validates a message body: the key event contract plus what the table needs. Throws on refusal. */
export function parseAuditEvent(raw: unknown): KeyEvent {
  const event = parseKeyEvent(raw);
  Timestamp.parse(event.occurred_at);
  if (NUL.test(JSON.stringify(event))) throw new Error('event contains a NUL character');
  return event;
}

/**
 * What the chain covers of an event as it will read back from the table: `occurred_at` in UTC
 * with milliseconds (ingest stores exactly that), `data` as JSON would carry it.
 */
export function chainContentOfEvent(e: KeyEvent): ChainContent {
  return {
    id: e.id,
    tenant_id: e.tenant_id,
    key_id: e.key_id,
    type: e.type,
    schema_version: e.schema_version,
    occurred_at: new Date(e.occurred_at).toISOString(),
    prefix: e.prefix,
    actor_type: e.actor.type,
    actor_id: e.actor.id,
    data: JSON.parse(JSON.stringify(e.data)) as unknown,
  };
}

export function chainContentOfRow(row: Pick<AuditEventEntity, keyof Omit<ChainContent, 'occurred_at'>> & { occurred_at: Date }): ChainContent {
  return {
    id: row.id,
    tenant_id: row.tenant_id,
    key_id: row.key_id,
    type: row.type,
    schema_version: Number(row.schema_version),
    occurred_at: row.occurred_at.toISOString(),
    prefix: row.prefix,
    actor_type: row.actor_type,
    actor_id: row.actor_id,
    data: row.data,
  };
}

export function toEntry(row: AuditEventEntity): AuditEntry {
  return {
    id: row.id,
    type: row.type as AuditEntry['type'],
    occurred_at: row.occurred_at.toISOString(),
    actor: { type: row.actor_type as AuditEntry['actor']['type'], id: row.actor_id },
    key_id: row.key_id,
    prefix: row.prefix,
    environment: row.environment,
    changes: row.data,
  };
}
