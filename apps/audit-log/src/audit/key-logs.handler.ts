import { type AuditEntry, type Page, type PageQuery } from '@keyway/contracts';
import { Injectable } from '@nestjs/common';
import { toEntry } from './audit-event';
import { AuditEventsRepository, type TrailFilter } from './audit-events.repository';
import { AuditLogError } from './audit.errors';

export interface KeyLogsQuery {
  trail: TrailFilter;
  keyId: string;
  page: PageQuery;
}

/**
 * A key's audit trail: its lifecycle events, newest first (by `occurred_at`, then stream order).
 * The tenant and the caller's mode are part of every look-up, so a key id from another tenant (or
 * another mode) finds nothing, and a key with nothing recorded there is `not_found` rather than
 * an empty list.
 */
@Injectable()
export class KeyLogsHandler {
  constructor(private readonly events: AuditEventsRepository) {}

  async execute(q: KeyLogsQuery): Promise<Page<AuditEntry>> {
    const page = await this.events.pageForKey(q.trail, q.keyId, q.page);
    if (page.total === 0) throw AuditLogError.keyNotFound(q.keyId);
    return { ...page, data: page.data.map(toEntry) };
  }
}
