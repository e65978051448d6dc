import type { EntityManager } from 'typeorm';
import { ContactCheckError } from './contacts.errors';

/**
 * Links to one contact are written, and unlinked by `keyway.contacts.deleted`, one at a time: the
 * writer and the deletion take the same transaction-scoped advisory lock. Without it a journey
 * whose contacts check passed just before the deletion could commit after the deletion's UPDATE
 * had run (an UPDATE does not see, or wait for, rows inserted by a transaction still open), and
 * keep a link to nobody for good.
 */
async function lockContact(m: EntityManager, tenantId: string, contactId: string): Promise<void> {
  await m.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [contactLockKey(tenantId, contactId)]);
}

/** The advisory lock's key text (hashed to a bigint by Postgres). */
export const contactLockKey = (tenantId: string, contactId: string): string => `journeys.contact:${tenantId}:${contactId}`;

/**
 * Inside a write's transaction, after contacts confirmed the id: refuses a contact journeys has
 * already seen deleted (the tombstone outlives the event), as contacts would have answered had it
 * been asked a moment later. Contact ids are never reused, so a deleted id is never valid again.
 */
export async function assertContactLinkable(m: EntityManager, tenantId: string, contactId: string): Promise<void> {
  await lockContact(m, tenantId, contactId);
  const rows: unknown[] = await m.query(`SELECT 1 FROM deleted_contacts WHERE tenant_id = $1 AND contact_id = $2`, [tenantId, contactId]);
  if (rows.length > 0) throw ContactCheckError.unknownContact(contactId);
}

export interface ContactDeletion {
  eventId: string;
  tenantId: string;
  contactId: string;
  /** The mode the contact lived in: only that mode's journeys can name it. */
  mode: 'live' | 'test';
  deletedAt: Date;
}

/**
 * Applies deletions: a tombstone per contact, and every journey linked to it keeps its history but
 * loses the link (`contact_id` null, `contact_deleted_at` set). Idempotent: a redelivered event
 * finds its tombstone and no journey still linked, and changes nothing. Returns how many journeys
 * were unlinked.
 */
export async function applyContactDeletions(m: EntityManager, deletions: readonly ContactDeletion[]): Promise<number> {
  // One lock order for every transaction that takes several: no deadlock between two batches.
  const ordered = [...deletions].sort((a, b) => `${a.tenantId}:${a.contactId}`.localeCompare(`${b.tenantId}:${b.contactId}`));
  let unlinked = 0;
  for (const d of ordered) {
    await lockContact(m, d.tenantId, d.contactId);
    await m.query(
      `INSERT INTO deleted_contacts (tenant_id, contact_id, deleted_at, event_id) VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, contact_id) DO NOTHING`,
      [d.tenantId, d.contactId, d.deletedAt, d.eventId],
    );
    const [, affected] = (await m.query(
      `UPDATE journeys SET contact_id = NULL, contact_deleted_at = $4 WHERE tenant_id = $1 AND environment = $2 AND contact_id = $3`,
      [d.tenantId, d.mode, d.contactId, d.deletedAt],
    )) as [unknown, number];
    unlinked += affected;
  }
  return unlinked;
}
