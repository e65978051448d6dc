import { newId, type DomainEventType, type KeywayError, type Page, type PageQuery } from '@keyway/contracts';
import { Keyset, byIdLoader, cheapTotal, fetchPage, pgErrorCode, type TenantRow } from '@keyway/database';
import type { DataSource, EntityManager, Repository } from 'typeorm';
import { recordChanges, type Change } from '../events/outbox';
import { modeLiteral, type Caller } from './caller';

/** A row as `RETURNING *` gives it: pg has parsed jsonb and timestamptz already. */
export type Row = Record<string, unknown> & { id: string; external_id: string | null };

export interface RecordSpec<V> {
  table: 'contacts' | 'accounts';
  /** The columns a write sets, besides id, tenant, mode and the timestamps. */
  columns: readonly string[];
  view(row: Row): V;
  notFound(id: string): KeywayError;
  /** A Postgres refusal (unique, foreign key) as this module's error; anything else is returned as it came. */
  refusal(err: unknown, values: Record<string, unknown>): unknown;
}

export interface Upserted<V> {
  status: 200 | 201;
  body: V;
}

/**
 * Reads and writes of one table of this service, each scoped by tenant and mode, each write with
 * its domain event in the same transaction. Shared by contacts and accounts, which differ only in
 * columns, views and errors.
 */
export class Records<V> {
  private readonly byId: (tenantId: string, id: string) => Promise<(TenantRow & { environment: string }) | null>;
  readonly keyset: Keyset;

  constructor(
    private readonly ds: DataSource,
    repo: Repository<TenantRow & { environment: string }>,
    private readonly spec: RecordSpec<V>,
  ) {
    this.byId = byIdLoader(repo);
    this.keyset = new Keyset({
      list: spec.table,
      columns: [
        { column: 'r.created_at', type: 'timestamptz' },
        { column: 'r.id', type: 'text' },
      ],
      direction: 'desc',
    });
  }

  private get kind(): 'contacts' | 'accounts' {
    return this.spec.table;
  }

  private event(type: 'created' | 'updated', row: Row): Change {
    return { type: `${this.kind}.${type}` as DomainEventType, resourceId: row.id, data: this.spec.view(row) } as Change;
  }

  /** Newest first; `filters.sql` are conditions on `r` numbering their parameters from `$2` (`$1` is the tenant). */
  async list(caller: Caller, query: Pick<PageQuery, 'page' | 'pageSize' | 'after'>, filters: { sql: string[]; params: unknown[]; echo: unknown }): Promise<Page<V>> {
    const where = [`r.tenant_id = $1`, `r.environment = ${modeLiteral(caller.mode)}`, ...filters.sql].join(' AND ');
    const page = await fetchPage<Row>(this.ds, {
      select: 'r.*',
      from: `${this.spec.table} r`,
      where,
      params: [caller.tenantId, ...filters.params],
      keyset: this.keyset,
      query,
      filters: filters.echo,
    });
    return { ...page, data: page.data.map((r) => this.spec.view(r)) };
  }

  /**
   * The first page of a filter that many rows match, read from the newest `window` rows of the
   * list through the (tenant, mode, created_at, id) index, instead of from a filter's own index.
   * For `q`, the trigram index finds rare terms at once but must collect, fetch and sort every
   * match of a common one (`@gmail.com` in a large tenant: 100,000 rows, ~250 ms); the planner
   * cannot tell which it is. When the window holds a full page of matches, those are exactly the
   * first matches of the whole list, and the page is answered from it (~1 ms) with a total
   * counted when the window was the whole list, else extrapolated from the window's share of
   * matches (flagged as an estimate). Otherwise (a rare
   * term, a small list, a deeper page) it answers null, and the caller takes `list`.
   */
  async probe(caller: Caller, query: Pick<PageQuery, 'page' | 'pageSize' | 'after'>, filters: { sql: string[]; params: unknown[]; echo: unknown }, window = 1_000): Promise<Page<V> | null> {
    if (query.page !== 1) return null;
    const base = [`r.tenant_id = $1`, `r.environment = ${modeLiteral(caller.mode)}`];
    const params: unknown[] = [caller.tenantId, ...filters.params];
    const inner = [...base];
    if (query.after !== undefined) {
      const c = this.keyset.condition(this.keyset.decode(query.after, filters.echo), params.length + 1);
      inner.push(c.sql);
      params.push(...c.params);
    }
    params.push(window + 1, query.pageSize + 1); // one row more tells whether the window held the rest
    const n = params.length;
    const rows = await this.ds.query<Array<Row & { _hits: string; _window: string }>>(
      `WITH w AS (SELECT * FROM ${this.spec.table} r WHERE ${inner.join(' AND ')} ORDER BY ${this.keyset.orderBy()} LIMIT $${n - 1})
       SELECT r.*, ${this.keyset.selectKeys()}, count(*) OVER () AS _hits, (SELECT count(*) FROM w) AS _window
         FROM w r WHERE ${filters.sql.length > 0 ? filters.sql.join(' AND ') : 'true'} ORDER BY ${this.keyset.orderBy()} LIMIT $${n}`,
      params,
    );
    const windowRows = Number(rows[0]?._window ?? 0);
    if (rows.length <= query.pageSize) return null; // not a full page of matches here: a rare term, or the end
    const hits = Number(rows[0]!._hits);
    const whole = windowRows <= window; // the window held the rest of the list
    if (whole && query.after !== undefined) return null; // a short list: its exact total is cheap
    const page = rows.slice(0, query.pageSize);
    const next_cursor = this.keyset.encode(page[page.length - 1]!, filters.echo);
    const data = page.map(({ _hits: _h, _window: _w, ...row }) => this.spec.view(withoutKeys(row as Row)));
    if (whole) return { data, page: 1, pageSize: query.pageSize, total: hits, hasMore: true, next_cursor };
    const all = await cheapTotal(this.ds, { from: `${this.spec.table} r`, where: base.join(' AND '), params: [caller.tenantId] });
    const total = Math.max(query.pageSize + 1, Math.round((hits / windowRows) * all.n));
    return { data, page: 1, pageSize: query.pageSize, total, hasMore: true, next_cursor, total_is_estimate: true };
  }

  /** By id, coalesced with the other reads of the same turn (byIdLoader); the other mode's id is not found. */
  async find(caller: Pick<Caller, 'tenantId' | 'mode'>, id: string): Promise<Row | null> {
    const row = await this.byId(caller.tenantId, id);
    return row !== null && row.environment === caller.mode ? (row as unknown as Row) : null;
  }

  async get(caller: Caller, id: string): Promise<V> {
    const row = await this.find(caller, id);
    if (!row) throw this.spec.notFound(id);
    return this.spec.view(row);
  }

  async insert(m: EntityManager, caller: Caller, values: Record<string, unknown>): Promise<V> {
    const now = new Date();
    const cols = ['id', 'tenant_id', 'environment', 'created_at', 'updated_at', ...this.spec.columns];
    const params = [newId(this.kind === 'contacts' ? 'contact' : 'account'), caller.tenantId, caller.mode, now, now, ...this.spec.columns.map((c) => this.param(c, values[c]))];
    const row = await this.write(values, () => m.query<Row[]>(`INSERT INTO ${this.spec.table} (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')}) RETURNING *`, params));
    await recordChanges(m, caller, [this.event('created', row[0]!)]);
    return this.spec.view(row[0]!);
  }

  /** Only the given fields change: one UPDATE, so a concurrent delete leaves nothing to resurrect. */
  async update(m: EntityManager, caller: Caller, id: string, values: Record<string, unknown>): Promise<V> {
    const given = this.spec.columns.filter((c) => values[c] !== undefined);
    const sets = given.map((c, i) => `${c} = $${i + 4}`);
    const params = [caller.tenantId, id, new Date(), ...given.map((c) => this.param(c, values[c]))];
    const rows = await this.write(values, () =>
      m.query<[Row[], number]>(
        `UPDATE ${this.spec.table} SET ${[...sets, 'updated_at = $3'].join(', ')}
          WHERE tenant_id = $1 AND environment = ${modeLiteral(caller.mode)} AND id = $2 RETURNING *`,
        params,
      ),
    );
    const row = rows[0][0];
    if (!row) throw this.spec.notFound(id);
    await recordChanges(m, caller, [this.event('updated', row)]);
    return this.spec.view(row);
  }

  /**
   * Creates the record with this external id, or replaces it whole (race-safe: one INSERT … ON
   * CONFLICT on the per-mode unique index). A replacement that changes nothing writes nothing: no
   * new `updated_at`, no event (an SDK syncing the same user every minute is not news).
   */
  async upsert(m: EntityManager, caller: Caller, externalId: string, values: Record<string, unknown>): Promise<Upserted<V>> {
    const now = new Date();
    const own = this.spec.columns.filter((c) => c !== 'external_id');
    const cols = ['id', 'tenant_id', 'environment', 'created_at', 'updated_at', 'external_id', ...own];
    const params = [newId(this.kind === 'contacts' ? 'contact' : 'account'), caller.tenantId, caller.mode, now, now, externalId, ...own.map((c) => this.param(c, values[c]))];
    const t = this.spec.table;
    const rows = await this.write({ ...values, external_id: externalId }, () =>
      m.query<Array<Row & { inserted: boolean }>>(
        `INSERT INTO ${t} AS t (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})
         ON CONFLICT (tenant_id, environment, external_id) WHERE external_id IS NOT NULL
         DO UPDATE SET ${own.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}, updated_at = EXCLUDED.updated_at
         WHERE (${own.map((c) => `t.${c}`).join(', ')}) IS DISTINCT FROM (${own.map((c) => `EXCLUDED.${c}`).join(', ')})
         RETURNING t.*, (t.xmax = 0) AS inserted`,
        params,
      ),
    );
    const row = rows[0];
    if (!row) {
      // Unchanged: ON CONFLICT … WHERE skipped the update, and has locked the row for this transaction.
      const same = await m.query<Row[]>(`SELECT * FROM ${t} WHERE tenant_id = $1 AND environment = ${modeLiteral(caller.mode)} AND external_id = $2`, [caller.tenantId, externalId]);
      return { status: 200, body: this.spec.view(same[0]!) };
    }
    const { inserted, ...stored } = row;
    await recordChanges(m, caller, [this.event(inserted ? 'created' : 'updated', stored as Row)]);
    return { status: inserted ? 201 : 200, body: this.spec.view(stored as Row) };
  }

  async remove(m: EntityManager, caller: Caller, id: string): Promise<void> {
    const [rows] = await m.query<[Array<{ id: string; external_id: string | null }>, number]>(
      `DELETE FROM ${this.spec.table} WHERE tenant_id = $1 AND environment = ${modeLiteral(caller.mode)} AND id = $2 RETURNING id, external_id`,
      [caller.tenantId, id],
    );
    const gone = rows[0];
    if (!gone) throw this.spec.notFound(id);
    await recordChanges(m, caller, [{ type: `${this.kind}.deleted`, resourceId: gone.id, data: { id: gone.id, external_id: gone.external_id } }]);
  }

  private param(column: string, value: unknown): unknown {
    if (column === 'properties') return JSON.stringify(value ?? {});
    return value ?? null;
  }

  private async write<T>(values: Record<string, unknown>, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw this.spec.refusal(err, values);
    }
  }
}

/** A row without the keyset's cursor columns (`_kc0`, …: see Keyset.selectKeys). */
function withoutKeys(row: Row): Row {
  return Object.fromEntries(Object.entries(row).filter(([k]) => !k.startsWith('_kc'))) as Row;
}

/** Retries a whole transaction that Postgres aborted to break a deadlock (a batch against a batch). */
export async function retryDeadlocks<T>(run: () => Promise<T>, attempts = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await run();
    } catch (err) {
      if (i >= attempts || (pgErrorCode(err) !== '40P01' && pgErrorCode(err) !== '40001')) throw err;
    }
  }
}
