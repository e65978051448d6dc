import { type Actor, type AuditEntry, parseKeyEvent, parseMemberEvent, parseTenantEvent } from '@keyway/contracts';
import { z } from 'zod';
import type { ChainContent } from '../chain/chain';
import type { AuditEventEntity } from './audit-event.entity';

/**
 * An event as the trail stores it: a key lifecycle event as it is, a member event
 * (`keyway.members.<type>`) as `member.<type>` with no key (`key_id`, `prefix` null: its mode is
 * `live`) and `{member_id, ...data}` for its data, or a tenant event an operator caused
 * (`keyway.tenants.<type>`) as `tenant.<type>`, likewise without a key, its data as it is.
 */
export interface TrailEvent {
  id: string;
  tenant_id: string;
  key_id: string | null;
  type: string;
  schema_version: number;
  occurred_at: string;
  prefix: string | null;
  actor: Actor;
  data: Record<string, unknown>;
}

/** One event as it arrived, with the stream sequence it arrived at. */
export interface AuditRecord {
  event: TrailEvent;
  streamSeq: number;
}

// The contract only says "string"; Postgres would reject a batch over an unparsable timestamp,
// so such an event is refused here, where refusing terminates only that message.
const Timestamp = z.iso.datetime({ offset: true });
// jsonb cannot hold U+0000; one such string would fail the whole multi-row INSERT.
const NUL = /\\u0000/;

/**
 * Validates a message body: the key or member event contract plus what the table needs. Throws on
 * refusal. A member event carries `member_id` (a key event `key_id`); its data is what the member
 * event contract names and nothing else (zod drops unknown fields), so no password, hash or
 * session can reach the trail even from a faulty writer.
 */
export function parseAuditEvent(raw: unknown): TrailEvent {
  const event = isMemberEvent(raw) ? memberTrailEvent(raw) : isTenantEvent(raw) ? tenantTrailEvent(raw) : (parseKeyEvent(raw) as TrailEvent);
  Timestamp.parse(event.occurred_at);
  if (NUL.test(JSON.stringify(event))) throw new Error('event contains a NUL character');
  return event;
}

function isMemberEvent(raw: unknown): boolean {
  return typeof raw === 'object' && raw !== null && 'member_id' in raw && !('key_id' in raw);
}

/**
 * A tenant event names neither a key nor a member (nor a prefix): a key event missing its key is
 * refused as a key event, not read as a tenant's.
 */
function isTenantEvent(raw: unknown): boolean {
  return typeof raw === 'object' && raw !== null && !('key_id' in raw) && !('member_id' in raw) && !('prefix' in raw);
}

/** Its data is what the tenant contract names and nothing else (zod drops unknown fields). */
function tenantTrailEvent(raw: unknown): TrailEvent {
  const t = parseTenantEvent(raw);
  return {
    id: t.id,
    tenant_id: t.tenant_id,
    key_id: null,
    type: `tenant.${t.type}`,
    schema_version: t.schema_version,
    occurred_at: t.occurred_at,
    prefix: null,
    actor: t.actor,
    data: { ...t.data },
  };
}

function memberTrailEvent(raw: unknown): TrailEvent {
  const m = parseMemberEvent(raw);
  return {
    id: m.id,
    tenant_id: m.tenant_id,
    key_id: null,
    type: `member.${m.type}`,
    schema_version: m.schema_version,
    occurred_at: m.occurred_at,
    prefix: null,
    actor: m.actor,
    data: { member_id: m.member_id, ...m.data },
  };
}

/**
 * What the chain covers of an event as it will read back from the table: `occurred_at` in UTC
 * with milliseconds (ingest stores exactly that), `data` as JSON would carry it (`dataJson`: its
 * JSON text, when the caller has it already).
 */
function chainContentOfEvent(e: TrailEvent, dataJson = JSON.stringify(e.data)): ChainContent {
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
    data: JSON.parse(dataJson) as unknown,
  };
}

/** A batch's rows as one array per column, in the insert's order (`id` … `stream_seq`). */
export type RowColumns = [string[], string[], Array<string | null>, string[], number[], string[], Array<string | null>, string[], string[], string[], number[]];
export const rowColumns = (): RowColumns => [[], [], [], [], [], [], [], [], [], [], []];

/** Adds an event's row to `cols`; returns its chain content (`data` as JSON once for both). */
export function pushRow(cols: RowColumns, e: TrailEvent, streamSeq: number): ChainContent {
  const data = JSON.stringify(e.data);
  const content = chainContentOfEvent(e, data);
  cols[0].push(e.id);
  cols[1].push(e.tenant_id);
  cols[2].push(e.key_id);
  cols[3].push(e.type);
  cols[4].push(e.schema_version);
  cols[5].push(content.occurred_at);
  cols[6].push(e.prefix);
  cols[7].push(e.actor.type);
  cols[8].push(e.actor.id);
  cols[9].push(data);
  cols[10].push(streamSeq);
  return content;
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
