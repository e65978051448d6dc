import type { AuditEventsQuery, Page, PageQuery } from '@keyway/contracts';
import { fetchPage, Keyset } from '@keyway/database';
import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { ChainKey } from '../chain/chain';
import type { SealedRow } from '../chain/linker';
import { chainKeyOf, type AuditLogConfig } from '../config';
import { pushRow, rowColumns, type AuditRecord } from './audit-event';
import type { AuditEventEntity } from './audit-event.entity';

export const AUDIT_CONFIG = Symbol('AUDIT_CONFIG');

// One statement for the whole batch with a fixed number of parameters (one array per column), so
// the statement text is the same for every batch size and never nears the 65,535-parameter limit;
// one round trip and one commit per batch. Every tenant in the batch gets its head row (the row
// the linker reads) in the same statement, sorted, so two writers never wait on each other in
// opposite orders. A known id (a redelivery) changes nothing, except that an event republished
// under a new message id and stored at the later sequence first takes the earlier one while it is
// not linked yet: the chain follows each event's first sequence, as a rebuild from the stream would.
const INSERT_BATCH = `
  WITH heads AS (
    INSERT INTO audit_heads (tenant_id) SELECT DISTINCT t FROM unnest($2::text[]) AS t
      WHERE NOT EXISTS (SELECT 1 FROM audit_heads h WHERE h.tenant_id = t) ORDER BY 1
    ON CONFLICT (tenant_id) DO NOTHING)
  INSERT INTO audit_events
    (id, tenant_id, key_id, type, schema_version, occurred_at, prefix, actor_type, actor_id, data, stream_seq, seal)
  SELECT * FROM unnest(
    $1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::timestamptz[],
    $7::text[], $8::text[], $9::text[], $10::jsonb[], $11::bigint[], $12::bytea[])
  ON CONFLICT (id) DO UPDATE SET stream_seq = EXCLUDED.stream_seq, seal = EXCLUDED.seal
    WHERE audit_events.chain_pos IS NULL AND EXCLUDED.stream_seq < audit_events.stream_seq`;

/**
 * The tenant trail: newest first by stream sequence, which among a tenant's linked rows is chain
 * order (the linker links in stream order and never behind a head). Not the position itself: no
 * index names the chain columns, so linking is a HOT update. (A new list name: cursors made on
 * the position are refused, not misread.)
 */
const TRAIL = new Keyset({ list: 'audit-trail', columns: [{ column: 'stream_seq', type: 'bigint' }], direction: 'desc' });
/** A key's trail: newest first by occurred_at, then stream order, then id (unique). */
const KEY_LOGS = new Keyset({
  list: 'key-logs',
  columns: [
    { column: 'occurred_at', type: 'timestamptz' },
    { column: 'stream_seq', type: 'bigint' },
    { column: 'id', type: 'text' },
  ],
  direction: 'desc',
});

/** Candidates a from/to page reads beyond the rows it needs, for refused rows among them. */
const RANGE_SLACK = 64;
/** Entries newer than a range below which the trail's newest end is the cheaper way in. */
const RECENT = 2_000;

/** The filters a list applies, the mode always among them when the caller has one. */
export interface TrailFilter {
  tenantId: string;
  environment: 'live' | 'test' | undefined;
}

/** A row as pages read it, with its sort keys as text (bigint). */
export type TrailRow = AuditEventEntity;

@Injectable()
export class AuditEventsRepository {
  private readonly chain: ChainKey | undefined;

  constructor(
    @InjectDataSource() private readonly ds: DataSource,
    @Inject(AUDIT_CONFIG) config: AuditLogConfig,
  ) {
    this.chain = config.AUDIT_CHAIN === 'on' ? new ChainKey(chainKeyOf(config)) : undefined;
  }

  /**
   * Stores every record whose id is new, sealed; a known id (a redelivery) changes nothing.
   * Returns the rows as sealed (for the linker: see ChainLinker.sealed). `query`: a transaction's
   * client (InsertLinker's) instead of the pool.
   */
  async insert(records: readonly AuditRecord[], query: (sql: string, params: unknown[]) => Promise<unknown> = (sql, params) => this.ds.query(sql, params)): Promise<SealedRow[]> {
    // One row per id, at its first sequence (ON CONFLICT DO UPDATE may not touch a row twice).
    const byId = new Map<string, AuditRecord>();
    for (const r of records) {
      const seen = byId.get(r.event.id);
      if (!seen || r.streamSeq < seen.streamSeq) byId.set(r.event.id, r);
    }
    if (byId.size === 0) return [];
    const sealed: SealedRow[] = [];
    const cols = rowColumns();
    const seals: Array<Buffer | null> = [];
    for (const { event: e, streamSeq } of byId.values()) {
      const content = pushRow(cols, e, streamSeq);
      const seal = this.chain ? this.chain.seal(content, streamSeq) : null;
      seals.push(seal);
      if (seal) sealed.push({ id: e.id, streamSeq: String(streamSeq), seal, content });
    }
    await query(INSERT_BATCH, [...cols, seals]);
    return sealed;
  }

  /**
   * One page of a key's trail, newest first (occurred_at, then stream order), linked entries
   * only, in the caller's mode; by `page` or by `after` (a cursor on the sort key).
   */
  async pageForKey(f: TrailFilter, keyId: string, q: PageQuery): Promise<Page<TrailRow>> {
    const [envSql, params] = this.envCondition(f, [f.tenantId, keyId], 3);
    return fetchPage<TrailRow>(this.ds, {
      select: '*',
      from: 'audit_events',
      where: `tenant_id = $1 AND key_id = $2 AND chain_pos IS NOT NULL ${envSql}`,
      params,
      keyset: KEY_LOGS,
      query: q,
      filters: { key: keyId, environment: f.environment ?? null },
    });
  }

  /**
   * One page of the tenant's trail, newest first in chain order (by stream sequence): each filter
   * narrows an index that ends in stream_seq, so a page costs the same at the top of 10 rows or of
   * 1,000,000, and `after` (a cursor on the sequence) walks it all at that cost. The unfiltered
   * trail's total is exact at any size (the head row counts it as it links); a filtered one's is
   * exact up to 1,000 rows, above that the planner's estimate, flagged `total_is_estimate`.
   * `from`/`to`: see timeRangeSource.
   */
  async pageForTenant(f: TrailFilter, q: AuditEventsQuery): Promise<Page<TrailRow>> {
    const { where, params } = this.tenantWhere(f, q);
    const filters = { environment: f.environment ?? null, key_id: q.key_id, type: q.type, actor_type: q.actor_type, actor_id: q.actor_id, from: q.from, to: q.to };
    const filtered = [q.key_id, q.type, q.actor_type, q.actor_id, q.from, q.to].some((v) => v !== undefined);
    const timed = q.from !== undefined || q.to !== undefined;
    const timeOnly = timed && [q.key_id, q.type, q.actor_type, q.actor_id].every((v) => v === undefined);
    if (timeOnly) {
      const fast = await this.timeRangePage(f, q, filters);
      if (fast) return fast;
    }
    // A time range with other filters is read through the time index and then sorted: left to
    // itself, the planner walks the trail from its newest end expecting the range to be spread
    // evenly, and a range in the past (entries arrive in time order) costs every newer row first.
    // OFFSET 0 keeps the range query apart (its own plan, no ORDER BY/LIMIT pulled in).
    const source = timed ? { from: `(SELECT * FROM audit_events WHERE ${where} OFFSET 0) AS audit_events`, where: 'true' } : { from: 'audit_events', where };
    const page = await fetchPage<TrailRow>(this.ds, { select: '*', ...source, params, keyset: TRAIL, query: q, filters });
    if (filtered) return page;
    const col = f.environment === 'test' ? 'test_count' : f.environment === 'live' ? 'live_count' : 'position';
    const rows = await this.ds.query<Array<{ n: string }>>(`SELECT ${col} AS n FROM audit_heads WHERE tenant_id = $1`, [f.tenantId]);
    const { total_is_estimate: _estimate, ...exact } = page;
    return { ...exact, total: Number(rows[0]?.n ?? 0) };
  }

  /**
   * `from`/`to` alone (with the caller's mode). A range with fewer than RECENT entries after it
   * (no `to`, or a recent one) is read from the trail's newest end (the page is there). Otherwise
   * the range's sequences come from an index-only scan
   * of `(tenant_id[, environment], occurred_at, stream_seq)` (no row is read), the newest of them
   * are kept (a top-N sort of integers), and only those rows are read. Before, every row of the
   * range was read and sorted (1,000,000 entries, one day of 86,400: ~1 s; the planner's other
   * choice, the trail from its newest end, costs every newer row). Linked rows only: the range
   * stops at the linker's cursor (above it nothing is linked), and a row at or below it that was
   * refused (written outside the service) is dropped when read. Should refused rows take more
   * than the slack and leave the page short while the range has more, the exact path answers.
   * Returns null for that fallback.
   */
  private async timeRangePage(f: TrailFilter, q: AuditEventsQuery, filters: unknown): Promise<Page<TrailRow> | null> {
    const params: unknown[] = [f.tenantId];
    const parts = ['tenant_id = $1'];
    const add = (sql: (p: string) => string, value: unknown): void => {
      params.push(value);
      parts.push(sql(`$${params.length}`));
    };
    if (f.environment !== undefined) add((p) => `environment = ${p}`, f.environment);
    if (q.from !== undefined) add((p) => `occurred_at >= ${p}::timestamptz`, q.from);
    if (q.to !== undefined) add((p) => `occurred_at < ${p}::timestamptz`, q.to);
    parts.push('stream_seq <= (SELECT stream_seq FROM audit_linker)');
    const range = parts.join(' AND ');
    // A range that reaches (nearly) the newest entries: the trail read from its newest end finds
    // the page at once, which no sort of the range beats when the range is most of the trail.
    if (await this.fewNewerThan(f, q.to)) {
      const { where, params: all } = this.tenantWhere(f, q);
      return fetchPage<TrailRow>(this.ds, { select: '*', from: 'audit_events', where, params: all, keyset: TRAIL, query: q, filters, count: { from: 'audit_events', where: range } });
    }
    // The cursor's sequence (checked digits by decode) bounds the range scan too, not only the page.
    const inner = q.after === undefined ? range : `${range} AND stream_seq < ${BigInt(TRAIL.decode(q.after, filters)[0]!)}`;
    const wanted = (q.after === undefined ? (q.page - 1) * q.pageSize : 0) + q.pageSize + 1;
    const k = wanted + RANGE_SLACK;
    const candidates = `(SELECT stream_seq FROM (SELECT stream_seq FROM audit_events WHERE ${inner} OFFSET 0) r ORDER BY stream_seq DESC LIMIT ${k})`;
    const page = await fetchPage<TrailRow>(this.ds, {
      select: '*',
      from: `(SELECT e.* FROM ${candidates} c JOIN audit_events e ON e.tenant_id = $1 AND e.stream_seq = c.stream_seq WHERE e.chain_pos IS NOT NULL) AS audit_events`,
      where: 'true',
      params,
      keyset: TRAIL,
      query: q,
      filters,
      count: { from: 'audit_events', where: range },
    });
    if (page.hasMore) return page;
    // Short: the range's end, unless refused rows filled the candidates.
    const n = await this.ds.query<Array<{ n: number }>>(`SELECT count(*)::int AS n FROM (SELECT 1 FROM audit_events WHERE ${inner} LIMIT ${k}) x`, params);
    return (n[0]?.n ?? 0) < k ? page : null;
  }

  /** Fewer than RECENT entries (of the caller's mode) at or after `to` (none without one): an index-only count. */
  private async fewNewerThan(f: TrailFilter, to: string | undefined): Promise<boolean> {
    if (to === undefined) return true;
    const [env, params] = this.envCondition(f, [f.tenantId, to], 3);
    const n = await this.ds.query<Array<{ n: number }>>(
      `SELECT count(*)::int AS n FROM (SELECT 1 FROM audit_events WHERE tenant_id = $1 AND occurred_at >= $2::timestamptz ${env} LIMIT ${RECENT}) x`,
      params,
    );
    return (n[0]?.n ?? 0) < RECENT;
  }

  private tenantWhere(f: TrailFilter, q: AuditEventsQuery): { where: string; params: unknown[] } {
    const params: unknown[] = [f.tenantId];
    const parts = ['tenant_id = $1', 'chain_pos IS NOT NULL'];
    const add = (sql: (p: string) => string, value: unknown): void => {
      params.push(value);
      parts.push(sql(`$${params.length}`));
    };
    if (f.environment !== undefined) add((p) => `environment = ${p}`, f.environment);
    if (q.key_id !== undefined) add((p) => `key_id = ${p}`, q.key_id);
    if (q.type !== undefined) add((p) => `type = ${p}`, q.type);
    if (q.actor_type !== undefined) add((p) => `actor_type = ${p}`, q.actor_type);
    if (q.actor_id !== undefined) add((p) => `actor_id = ${p}`, q.actor_id);
    if (q.from !== undefined) add((p) => `occurred_at >= ${p}::timestamptz`, q.from);
    if (q.to !== undefined) add((p) => `occurred_at < ${p}::timestamptz`, q.to);
    return { where: parts.join(' AND '), params };
  }

  private envCondition(f: TrailFilter, params: unknown[], next: number): [string, unknown[]] {
    if (f.environment === undefined) return ['', params];
    return [`AND environment = $${next}`, [...params, f.environment]];
  }
}
