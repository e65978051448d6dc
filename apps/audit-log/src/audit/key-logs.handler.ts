import { toPage, type AuditEntry, type Page, type PageQuery } from '@keyway/contracts';
import { Injectable } from '@nestjs/common';
import { toEntry } from './audit-event';
import { AuditEventsRepository } from './audit-events.repository';
import { AuditLogError } from './audit.errors';

export interface KeyLogsQuery {
  tenantId: string;
  keyId: string;
  page: PageQuery;
}

/**
 * A key's audit trail: lifecycle events and aggregated `used` events alike, newest first. The
 * tenant is part of every look-up, so a key id from another tenant finds nothing, and a key with
 * nothing recorded in this tenant is `not_found` rather than an empty list.
 */
@Injectable()
export class KeyLogsHandler {
  constructor(private readonly events: AuditEventsRepository) {}

  async execute(q: KeyLogsQuery): Promise<Page<AuditEntry>> {
    const [rows, total] = await this.events.pageForKey(q.tenantId, q.keyId, q.page);
    if (total === 0) throw AuditLogError.keyNotFound(q.keyId);
    return toPage(rows.map(toEntry), total, q.page);
  }
}
