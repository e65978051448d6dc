import { createHash } from 'node:crypto';
import { KeywayError, type Page, type PageQuery } from '@keyway/contracts';

/**
 * Lists that stay fast at 100,000 rows per tenant: a keyset cursor (`after`) beside `page`, and a
 * total that never counts a whole large list.
 *
 * The cursor is the sort key of a page's last row, as text, with a checksum over the list's name,
 * the filters and the values: base64url(JSON) + "." + 16 base64url characters of SHA-256. It is not
 * secret (it holds nothing the page did not show) and a forged one can only choose a place in the
 * caller's own list, since every query still filters by tenant and mode; the checksum makes an
 * edited, truncated or borrowed cursor (another list, other filters) a `400` naming `after`,
 * never a Postgres cast error (a `500`).
 */

/** How a sort column is compared in SQL; each value of a cursor is checked against its type. */
type KeysetType = 'timestamptz' | 'text' | 'bigint';

interface KeysetColumn {
  /** A column expression of the list's FROM, e.g. `k.created_at`. */
  column: string;
  type: KeysetType;
}

interface KeysetSpec {
  /** Binds cursors to this list: a cursor of another list is refused. */
  list: string;
  /** The sort, most significant first; the last must be unique (an id), so the order is total. */
  columns: readonly KeysetColumn[];
  direction: 'asc' | 'desc';
}

/** Anything with TypeORM's or pg's `query`: a DataSource, an EntityManager, a QueryRunner, a pg client. */
export interface Queryable {
  query(sql: string, params?: unknown[]): Promise<unknown>;
}

/** Below this many rows `total` is counted exactly; above, it is the planner's estimate, flagged. */
const EXACT_TOTAL_UP_TO = 1_000;

const VALUE_CHECK: Record<KeysetType, (v: string) => boolean> = {
  // Postgres' own text form of a timestamptz (what `::text` gives), and ISO 8601.
  timestamptz: (v) => /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([+-]\d{2}(:?\d{2})?|Z)?$/.test(v) && !Number.isNaN(Date.parse(v.replace(' ', 'T').replace(/([+-]\d{2})$/, '$1:00'))),
  text: (v) => v.length <= 200 && !v.includes('\u0000'),
  bigint: (v) => /^-?\d{1,19}$/.test(v),
};

const KEY_PREFIX = '_kc';
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64url');

function badCursor(message: string): KeywayError {
  return new KeywayError('invalid_request', 'The request is invalid', { details: [{ field: 'after', message }] });
}

export class Keyset {
  constructor(readonly spec: KeysetSpec) {
    if (spec.columns.length === 0) throw new Error('a keyset needs at least one column');
  }

  /** `ORDER BY` body: every column in the keyset's direction. */
  orderBy(): string {
    const dir = this.spec.direction === 'desc' ? 'DESC' : 'ASC';
    return this.spec.columns.map((c) => `${c.column} ${dir}`).join(', ');
  }

  /**
   * Extra select items carrying each sort value as text: a timestamptz keeps its microseconds
   * (a JS Date would drop them, and the next page would skip the rows within that millisecond).
   */
  selectKeys(): string {
    return this.spec.columns.map((c, i) => `${c.column}::text AS "${KEY_PREFIX}${i}"`).join(', ');
  }

  /** The rows after the cursor, as one row comparison (a btree on the sort columns serves it). */
  condition(values: readonly string[], firstParam: number): { sql: string; params: string[] } {
    const op = this.spec.direction === 'desc' ? '<' : '>';
    const cols = this.spec.columns.map((c) => c.column).join(', ');
    const ps = this.spec.columns.map((c, i) => `$${firstParam + i}::${c.type}`).join(', ');
    return { sql: `(${cols}) ${op} (${ps})`, params: [...values] };
  }

  encode(row: Record<string, unknown>, filters: unknown): string {
    const values = this.spec.columns.map((_, i) => String(row[`${KEY_PREFIX}${i}`]));
    const body = b64(JSON.stringify(values));
    return `${body}.${this.mac(body, filters)}`;
  }

  /** The sort values of a cursor; anything but a cursor this list issued for these filters is a 400. */
  decode(cursor: string, filters: unknown): string[] {
    const dot = cursor.indexOf('.');
    const body = dot < 0 ? '' : cursor.slice(0, dot);
    if (dot < 0 || cursor.slice(dot + 1) !== this.mac(body, filters)) {
      throw badCursor('is not a next_cursor of this list with these filters: start again from the first page');
    }
    let values: unknown;
    try {
      values = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      throw badCursor('is not a cursor');
    }
    const cols = this.spec.columns;
    if (!Array.isArray(values) || values.length !== cols.length || !values.every((v, i) => typeof v === 'string' && VALUE_CHECK[cols[i]!.type](v))) {
      throw badCursor('is not a cursor');
    }
    return values as string[];
  }

  private mac(body: string, filters: unknown): string {
    return createHash('sha256')
      .update(`${this.spec.list}\u0000${JSON.stringify(filters ?? null)}\u0000${body}`)
      .digest('base64url')
      .slice(0, 16);
  }
}

interface PageSource {
  /** Select list, e.g. `k.*, t.rate_limit_ceiling`. */
  select: string;
  /** FROM body, e.g. `keys k LEFT JOIN tenants t ON t.id = k.tenant_id`. */
  from: string;
  /** WHERE body using `$1…$n` of `params`: the tenant (and mode) always. */
  where: string;
  params: readonly unknown[];
  keyset: Keyset;
  query: Pick<PageQuery, 'page' | 'pageSize' | 'after'>;
  /** Filters of the request (q, type, …): a cursor only continues the list it came from. */
  filters?: unknown;
  /** A cheaper FROM/WHERE for the count (same params), e.g. without a join that adds no rows. */
  count?: { from: string; where?: string };
  exactTotalUpTo?: number;
}

/**
 * One page of a list: by `after` (keyset) or by `page` (OFFSET, bounded by the PageQuery rules),
 * `pageSize + 1` rows fetched so `hasMore` is exact, `next_cursor` from the last row, and a total
 * exact up to `exactTotalUpTo` rows, the planner's estimate above (`total_is_estimate: true`).
 * Rows come back as selected, without the cursor columns.
 */
export async function fetchPage<R>(db: Queryable, src: PageSource): Promise<Page<R>> {
  const { keyset, query: q } = src;
  const params = [...src.params];
  let where = src.where;
  let offset = (q.page - 1) * q.pageSize;
  if (q.after !== undefined) {
    const c = keyset.condition(keyset.decode(q.after, src.filters), params.length + 1);
    where = `(${where}) AND ${c.sql}`;
    params.push(...c.params);
    offset = 0;
  }
  params.push(q.pageSize + 1, offset);
  const n = params.length;
  const [found, total] = await Promise.all([
    rowsOf(
      await db.query(
        `SELECT ${src.select}, ${keyset.selectKeys()} FROM ${src.from} WHERE ${where} ORDER BY ${keyset.orderBy()} LIMIT $${n - 1} OFFSET $${n}`,
        params,
      ),
    ),
    cheapTotal(db, { from: src.count?.from ?? src.from, where: src.count?.where ?? src.where, params: src.params, exactUpTo: src.exactTotalUpTo }),
  ]);
  const hasMore = found.length > q.pageSize;
  const rows = hasMore ? found.slice(0, q.pageSize) : found;
  const last = rows[rows.length - 1];
  const next_cursor = hasMore && last !== undefined ? keyset.encode(last, src.filters) : null;
  const data = rows.map(withoutKeys) as R[];
  if (!total.estimate) return { data, page: q.page, pageSize: q.pageSize, total: total.n, hasMore, next_cursor };
  // An estimate never contradicts the page in hand: at least what was seen so far (and one more).
  const seen = (q.after === undefined ? offset : 0) + rows.length + (hasMore ? 1 : 0);
  return { data, page: q.page, pageSize: q.pageSize, total: Math.max(total.n, seen), hasMore, next_cursor, total_is_estimate: true };
}

/**
 * The number of rows matching, cheaply: an exact count that stops after `exactUpTo + 1` rows,
 * and above that the planner's estimate for the same WHERE (EXPLAIN: statistics, no rows read).
 * A large tenant's pages then cost what a small tenant's do.
 */
export async function cheapTotal(
  db: Queryable,
  src: { from: string; where: string; params: readonly unknown[]; exactUpTo?: number | undefined },
): Promise<{ n: number; estimate: boolean }> {
  const cap = src.exactUpTo ?? EXACT_TOTAL_UP_TO;
  const counted = rowsOf(await db.query(`SELECT count(*)::int AS n FROM (SELECT 1 FROM ${src.from} WHERE ${src.where} LIMIT ${cap + 1}) capped`, [...src.params]));
  const n = Number((counted[0] as { n?: unknown } | undefined)?.n ?? 0);
  if (n <= cap) return { n, estimate: false };
  const plan = rowsOf(await db.query(`EXPLAIN (FORMAT JSON) SELECT 1 FROM ${src.from} WHERE ${src.where}`, [...src.params]));
  return { n: Math.max(cap + 1, Math.round(planRows(plan[0]))), estimate: true };
}

function planRows(row: unknown): number {
  const json = (row as Record<string, unknown> | undefined)?.['QUERY PLAN'];
  const doc: unknown = typeof json === 'string' ? JSON.parse(json) : json;
  const rows = Array.isArray(doc) ? (doc[0] as { Plan?: { 'Plan Rows'?: unknown } } | undefined)?.Plan?.['Plan Rows'] : undefined;
  return typeof rows === 'number' ? rows : 0;
}

function rowsOf(result: unknown): Record<string, unknown>[] {
  if (Array.isArray(result)) return result as Record<string, unknown>[];
  const rows = (result as { rows?: unknown } | null)?.rows;
  return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [];
}

function withoutKeys(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) if (!k.startsWith(KEY_PREFIX)) out[k] = v;
  return out;
}
