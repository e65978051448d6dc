import { IDEMPOTENCY_WINDOW_HOURS, IdempotentOutcome, IdempotentReplay, KeywayError, type ErrorCode, type RequestContext } from '@keyway/contracts';
import type { DataSource, EntityManager } from 'typeorm';

/**
 * Idempotent POSTs (DESIGN, Idempotency): the owning service keeps `(tenant, mode, key) → first
 * answer` in its own database, written in the same transaction as the resource, so a crash
 * between commit and answer can neither duplicate the write nor lose it: the retry finds the
 * record and replays the answer.
 *
 * In one transaction: `pg_try_advisory_xact_lock` on the key (taken: the first call is still
 * running → `409 conflict`), then the record (same body → replayed; another body →
 * `422 idempotency_mismatch`), else the service's write and the record together.
 *
 * Which answers are kept (Stripe's rule): those of a call that reached the resource logic. A
 * success, and a client error the logic decided (`STORED_ERRORS`: 400, 403, 404): the retry gets
 * the same answer, and the write it refused stays unwritten (rolled back to a savepoint, the
 * record kept). Not kept: a 409 (the state it met may change: a name freed, a concurrent change
 * that says "try again"), a 5xx or any unexpected error (the transaction rolls back, record and
 * all: the retry runs the call again), and a request refused before the logic (validation at the
 * gateway or in `parseRpc`, which never reach here).
 */

/** Error answers replayed like successes. */
const STORED_ERRORS: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['invalid_request', 'insufficient_scope', 'forbidden', 'not_found']);

/** The default table; each service creates it in one of its own migrations with `idempotencyTableSql()`. */
const IDEMPOTENCY_TABLE = 'idempotency_keys';

/** DDL for a service's migration: the records, keyed by tenant, mode and key. */
export function idempotencyTableSql(table = IDEMPOTENCY_TABLE): string[] {
  return [
    `CREATE TABLE ${table} (
       tenant_id text NOT NULL,
       mode text NOT NULL,
       key text NOT NULL,
       body_hash text NOT NULL,
       outcome jsonb NOT NULL,
       created_at timestamptz NOT NULL DEFAULT now(),
       PRIMARY KEY (tenant_id, mode, key)
     )`,
    `CREATE INDEX ${table}_created ON ${table} (created_at)`,
  ];
}

export function dropIdempotencyTableSql(table = IDEMPOTENCY_TABLE): string[] {
  return [`DROP TABLE IF EXISTS ${table}`];
}

type Caller = Pick<RequestContext, 'tenant_id' | 'environment' | 'idempotency'>;

interface IdempotentOptions<T> {
  /**
   * What is kept and replayed of a success (default: the result as is). A key's creation or
   * rotation keeps its answer without the secret (`key: null`): a secret is shown once, never stored.
   */
  stored?: (result: T) => unknown;
  table?: string;
}

/** Inside the transaction: a stored error to throw once the record is committed. */
class StoredError {
  constructor(readonly error: KeywayError) {}
}

/**
 * Runs `work` (the service's write, on the transaction it is given) once per idempotency key.
 * Answers its result, or an `IdempotentReplay` of the first answer (return it from the handler:
 * the RPC server marks the reply replayed). Without a key, `work` simply runs in a transaction.
 */
export async function idempotent<T>(ds: DataSource, ctx: Caller, work: (tx: EntityManager) => Promise<T>, opts: IdempotentOptions<T> = {}): Promise<T | IdempotentReplay> {
  const idem = ctx.idempotency;
  if (idem === undefined) return ds.transaction(work);
  const table = opts.table ?? IDEMPOTENCY_TABLE;
  // The operator (no mode) has its own scope beside live and test.
  const mode = ctx.environment ?? 'operator';
  const scope = [ctx.tenant_id, mode, idem.key];
  const done = await ds.transaction(async (tx): Promise<T | IdempotentReplay | StoredError> => {
    const [lock] = (await tx.query(`SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS locked`, [JSON.stringify([table, ...scope])])) as Array<{ locked: boolean }>;
    if (!lock?.locked) {
      throw new KeywayError('conflict', 'A request with this Idempotency-Key is still being processed: retry once it has answered');
    }
    const [found] = (await tx.query(
      `SELECT body_hash, outcome FROM ${table} WHERE tenant_id = $1 AND mode = $2 AND key = $3 AND created_at > now() - make_interval(hours => $4)`,
      [...scope, IDEMPOTENCY_WINDOW_HOURS],
    )) as Array<{ body_hash: string; outcome: unknown }>;
    if (found) {
      if (found.body_hash !== idem.body_hash) {
        throw new KeywayError('idempotency_mismatch', 'This Idempotency-Key was used with another request: use a new key for a new request');
      }
      return new IdempotentReplay(IdempotentOutcome.parse(found.outcome));
    }
    await tx.query('SAVEPOINT idempotent_work');
    let outcome: IdempotentOutcome;
    let answer: T | StoredError;
    try {
      const result = await work(tx);
      outcome = { ok: true, response: opts.stored ? opts.stored(result) : result };
      answer = result;
    } catch (err) {
      if (!(err instanceof KeywayError) || !STORED_ERRORS.has(err.code)) throw err;
      await tx.query('ROLLBACK TO SAVEPOINT idempotent_work');
      outcome = { ok: false, error: err.toBody() };
      answer = new StoredError(err);
    }
    // An expired record of the same key (older than the window) is replaced; a live one never is
    // (the lock makes that impossible; should it happen, the write is rolled back, not doubled).
    const written = (await tx.query(
      `INSERT INTO ${table} (tenant_id, mode, key, body_hash, outcome) VALUES ($1, $2, $3, $4, $5::jsonb)
       ON CONFLICT (tenant_id, mode, key) DO UPDATE SET body_hash = EXCLUDED.body_hash, outcome = EXCLUDED.outcome, created_at = now()
        WHERE ${table}.created_at <= now() - make_interval(hours => $6)
       RETURNING key`,
      [...scope, idem.body_hash, JSON.stringify(outcome), IDEMPOTENCY_WINDOW_HOURS],
    )) as unknown[];
    if (written.length === 0) throw new KeywayError('conflict', 'A request with this Idempotency-Key is still being processed: retry once it has answered');
    // Each new record clears a few past the window (oldest first, by the created_at index), so
    // the table holds about a day of keys without a sweeper to run.
    await tx.query(
      `DELETE FROM ${table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM ${table} WHERE created_at <= now() - make_interval(hours => $1) ORDER BY created_at LIMIT 10 FOR UPDATE SKIP LOCKED))`,
      [IDEMPOTENCY_WINDOW_HOURS],
    );
    return answer;
  });
  if (done instanceof StoredError) throw done.error;
  return done;
}
