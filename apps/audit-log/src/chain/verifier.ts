import type { AuditHead, AuditVerification } from '@keyway/contracts';
import type { DataSource } from 'typeorm';
import { chainContentOfRow } from '../audit/audit-event';
import type { AuditEventEntity } from '../audit/audit-event.entity';
import { GENESIS, type ChainKey } from './chain';

const CHUNK = 5_000;

type ChainRow = AuditEventEntity & { chain_pos: string; hash: Buffer | null };

export interface VerifyOptions {
  ds: DataSource;
  key: ChainKey;
  /** The tenant's latest published head (KEYWAY_AUDIT_HEADS), or null. */
  publishedHead: (tenantId: string) => Promise<AuditHead | null>;
}

export interface VerifyResult {
  verification: AuditVerification;
  /** The mode of the first bad entry, so a mode-bound caller is not shown another mode's id. */
  badEnvironment?: 'live' | 'test';
}

const bad = (id: string | null, reason: string, env?: 'live' | 'test'): VerifyResult => ({
  verification: { verified: false, first_bad: { id, reason } },
  ...(env ? { badEnvironment: env } : {}),
});

/**
 * Walks a tenant's chain from position 1, recomputing every link with the key, then checks what
 * lies outside the chain and the latest published head:
 *  - a row edited (any covered column): its link no longer matches → that row;
 *  - a row deleted: a gap in the positions → the row after the gap;
 *  - a row inserted into the chain: its link (or the next one) does not match → that row;
 *  - a row edited and every later link recomputed with a guessed key: the first link made with the
 *    wrong key does not match → that row;
 *  - a row inserted outside the chain (unlinked, without a valid seal, or older than the head);
 *  - the tail deleted: the published head is beyond the end of the table → no row to name.
 * A published head behind the table is fine (heads are published after the links they name,
 * coalesced), as long as the entry at its position carries its hash; a tenant whose first head is
 * not published yet (within AUDIT_HEAD_PUBLISH_MS of its first link) is verified on its links alone.
 */
interface Walked {
  position: number;
  prev: Buffer;
  lastSeq: string;
  atPublished: Buffer | null;
  /** The test mode's entries walked, and the link of the last of them. */
  test: number;
  testHead: Buffer | null;
}

/**
 * The usual walk: the tenant's rows in stream order, through the (tenant_id, stream_seq) index
 * (no index names the position: linking stays a HOT update). An honest chain reads positions 1..n
 * in that order with no unlinked row between them, and then this walk is the walk by position.
 * On anything else it returns null, and the walk by position names the first bad entry.
 */
async function walkInStreamOrder(o: VerifyOptions, tenantId: string, published: AuditHead | null): Promise<Walked | null> {
  let prev = GENESIS;
  let position = 0;
  let lastSeq = '0';
  let after: [string, string] = ['-1', ''];
  let atPublished: Buffer | null = null;
  let unlinkedSeen = false;
  let test = 0;
  let testHead: Buffer | null = null;
  for (;;) {
    const rows = await o.ds.query<Array<AuditEventEntity>>(
      `SELECT * FROM audit_events WHERE tenant_id = $1 AND (stream_seq, id) > ($2::bigint, $3) ORDER BY stream_seq, id LIMIT ${CHUNK}`,
      [tenantId, ...after],
    );
    for (const row of rows) {
      if (row.chain_pos === null) {
        unlinkedSeen = true;
        continue;
      }
      const expected = position + 1;
      if (unlinkedSeen || Number(row.chain_pos) !== expected) return null;
      const link = o.key.link(prev, chainContentOfRow(row), expected);
      if (!row.hash || !link.equals(row.hash)) return null;
      prev = link;
      position = expected;
      lastSeq = row.stream_seq;
      if (row.environment === 'test') [test, testHead] = [test + 1, link];
      if (published && published.position === position) atPublished = link;
    }
    if (rows.length < CHUNK) break;
    const last = rows[rows.length - 1]!;
    after = [last.stream_seq, last.id];
  }
  return { position, prev, lastSeq, atPublished, test, testHead };
}

/** The exact walk, by position (a sort per chunk: only when the walk in stream order found a fault). */
async function walkByPosition(o: VerifyOptions, tenantId: string, published: AuditHead | null): Promise<Walked | VerifyResult> {
  let prev = GENESIS;
  let position = 0;
  let lastSeq = '0';
  let atPublished: Buffer | null = null;
  let test = 0;
  let testHead: Buffer | null = null;
  for (;;) {
    const rows = await o.ds.query<ChainRow[]>(
      `SELECT * FROM audit_events
       WHERE tenant_id = $1 AND chain_pos > $2 ORDER BY chain_pos LIMIT ${CHUNK}`,
      [tenantId, position],
    );
    for (const row of rows) {
      const expected = position + 1;
      if (Number(row.chain_pos) !== expected) {
        return bad(row.id, `entry at position ${row.chain_pos} where ${expected} was expected: an entry before it was deleted`, row.environment);
      }
      const link = o.key.link(prev, chainContentOfRow(row), expected);
      if (!row.hash || !link.equals(row.hash)) {
        return bad(row.id, `the link at position ${expected} does not match the entry and the link before it: the entry was edited or inserted, or the chain recomputed without the key`, row.environment);
      }
      prev = link;
      position = expected;
      lastSeq = row.stream_seq;
      if (row.environment === 'test') [test, testHead] = [test + 1, link];
      if (published && published.position === position) atPublished = link;
    }
    if (rows.length < CHUNK) break;
  }
  return { position, prev, lastSeq, atPublished, test, testHead };
}

/**
 * The whole chain is walked whatever the caller's mode (every link depends on the one before it);
 * a test key is answered with the test mode's share only: its entries and the link of the last of
 * them, so the answer moves with test activity alone and says nothing of the live trail.
 */
export async function verifyChain(o: VerifyOptions, tenantId: string, environment?: 'live' | 'test'): Promise<VerifyResult> {
  // The head first: anything linked after this read is newer than the head, never missing from it.
  const published = await o.publishedHead(tenantId);
  const fast = await walkInStreamOrder(o, tenantId, published);
  const walk = fast ?? (await walkByPosition(o, tenantId, published));
  if ('verification' in walk) return walk;
  const { position, prev, lastSeq, atPublished, test, testHead } = walk;
  const outside = await o.ds.query<Array<ChainRow>>(
    `SELECT * FROM audit_events
     WHERE tenant_id = $1 AND chain_pos IS NULL AND stream_seq <= $2::bigint ORDER BY stream_seq LIMIT 1`,
    [tenantId, lastSeq],
  );
  const stray = outside[0];
  if (stray) return bad(stray.id, 'an entry outside the chain, older than its head: inserted, or its link removed', stray.environment);

  if (published) {
    if (published.position > position) {
      return bad(null, `the published head is at position ${published.position} but the trail ends at ${position}: entries were deleted from its end`);
    }
    if (!atPublished || atPublished.toString('hex') !== published.hash) {
      return bad(null, `the entry at position ${published.position} does not carry the published head's hash`);
    }
  }
  if (environment === 'test') return { verification: { verified: true, entries: test, head: testHead?.toString('hex') ?? null } };
  return { verification: { verified: true, entries: position, head: position === 0 ? null : prev.toString('hex') } };
}
