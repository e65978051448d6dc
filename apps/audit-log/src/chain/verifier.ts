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
export async function verifyChain(o: VerifyOptions, tenantId: string): Promise<VerifyResult> {
  // The head first: anything linked after this read is newer than the head, never missing from it.
  const published = await o.publishedHead(tenantId);
  let prev = GENESIS;
  let position = 0;
  let lastSeq = '0';
  let atPublished: Buffer | null = null;
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
      if (published && published.position === position) atPublished = link;
    }
    if (rows.length < CHUNK) break;
  }

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
  return { verification: { verified: true, entries: position, head: position === 0 ? null : prev.toString('hex') } };
}
