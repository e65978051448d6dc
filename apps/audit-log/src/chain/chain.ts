import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';

/**
 * The hash chain of a tenant's audit trail, as pure functions.
 *
 *   link(n) = HMAC-SHA-256(AUDIT_CHAIN_KEY, link(n-1) ‖ canonical(entry n, n))     link(0) = 32 zero bytes
 *
 * The canonical content is what the trail shows (and what it does not: the tenant, the schema
 * version) with the entry's position, as JSON with sorted keys and no whitespace, so the same row
 * always hashes the same, whoever links it and however Postgres hands the jsonb back. It leaves
 * out the stream sequence and write times: a rebuild from the stream into an empty database gives
 * the same links.
 *
 * A second MAC, the seal, is written with each row at ingest: HMAC over the same content without
 * the position, plus the row's stream sequence. The linker only links sealed rows, so a row
 * written straight into the table (without the key) is never chained in by the service itself.
 */

/** The columns the chain covers, as read back from the table. */
export interface ChainContent {
  id: string;
  tenant_id: string;
  key_id: string | null;
  type: string;
  schema_version: number;
  /** ISO 8601 in UTC with milliseconds: ingest stores exactly that precision. */
  occurred_at: string;
  prefix: string | null;
  actor_type: string;
  actor_id: string;
  data: unknown;
}

export const GENESIS: Buffer = Buffer.alloc(32);

/** JSON with object keys sorted at every level: one text per value. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + canonicalJson(value[i]);
    return `${out}]`;
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  let out = '{';
  let first = true;
  for (const k of keys) {
    const v = obj[k];
    if (v === undefined) continue;
    out += `${first ? '' : ','}${JSON.stringify(k)}:${canonicalJson(v)}`;
    first = false;
  }
  return `${out}}`;
}

function contentOf(e: ChainContent): Record<string, unknown> {
  return {
    id: e.id,
    tenant_id: e.tenant_id,
    key_id: e.key_id,
    type: e.type,
    schema_version: e.schema_version,
    occurred_at: e.occurred_at,
    prefix: e.prefix,
    actor: { type: e.actor_type, id: e.actor_id },
    data: e.data,
  };
}

const isScalar = (v: unknown): boolean => v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
const J = JSON.stringify;

/**
 * canonicalJson({...contentOf(e), [extra]: value}), written out in its sorted key order: the
 * generic walk (sorting every object's keys) was the largest share of the service's own CPU per
 * event, three times per event. The same text byte for byte (a spec compares it with the generic
 * walk on arbitrary entries, and fixed links pin it): any other text breaks every existing chain.
 */
export function canonicalEntry(e: ChainContent, extra: 'position' | 'stream_seq', value: number | string): string {
  if (
    !isScalar(e.id) || !isScalar(e.tenant_id) || !isScalar(e.key_id) || !isScalar(e.type) || !isScalar(e.schema_version) ||
    !isScalar(e.occurred_at) || !isScalar(e.prefix) || !isScalar(e.actor_type) || !isScalar(e.actor_id) || e.data === undefined || !isScalar(value)
  ) {
    return canonicalJson({ ...contentOf(e), [extra]: value });
  }
  const head = `{"actor":{"id":${J(e.actor_id)},"type":${J(e.actor_type)}},"data":${canonicalJson(e.data)},"id":${J(e.id)},"key_id":${J(e.key_id)},"occurred_at":${J(e.occurred_at)},`;
  return extra === 'position'
    ? `${head}"position":${J(value)},"prefix":${J(e.prefix)},"schema_version":${J(e.schema_version)},"tenant_id":${J(e.tenant_id)},"type":${J(e.type)}}`
    : `${head}"prefix":${J(e.prefix)},"schema_version":${J(e.schema_version)},"stream_seq":${J(value)},"tenant_id":${J(e.tenant_id)},"type":${J(e.type)}}`;
}

export class ChainKey {
  /** Imported once: a raw key is imported again by every createHmac call. */
  private readonly key: KeyObject;

  constructor(secret: string) {
    this.key = createSecretKey(Buffer.from(secret, 'utf8'));
  }

  /** The link of the entry at `position` (1-based) after `prev`. */
  link(prev: Buffer, entry: ChainContent, position: number): Buffer {
    return createHmac('sha256', this.key)
      .update(prev)
      .update(canonicalEntry(entry, 'position', position))
      .digest();
  }

  /** The seal written at ingest: the entry as it arrived at its stream sequence. */
  seal(entry: ChainContent, streamSeq: string | number): Buffer {
    return createHmac('sha256', this.key)
      .update('seal\u0000')
      .update(canonicalEntry(entry, 'stream_seq', String(streamSeq)))
      .digest();
  }

  sealIsValid(entry: ChainContent, streamSeq: string | number, seal: Buffer | null): boolean {
    return seal !== null && seal.length === 32 && timingSafeEqual(seal, this.seal(entry, streamSeq));
  }
}

