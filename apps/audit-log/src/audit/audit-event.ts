import { type AuditEntry, parseKeyEvent, type KeyEvent } from '@keyway/contracts';
import { z } from 'zod';
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

export function toEntry(row: AuditEventEntity): AuditEntry {
  return {
    id: row.id,
    type: row.type as AuditEntry['type'],
    occurred_at: row.occurred_at.toISOString(),
    key_id: row.key_id,
    prefix: row.prefix,
    actor: { type: row.actor_type as AuditEntry['actor']['type'], id: row.actor_id },
    data: row.data,
  };
}
