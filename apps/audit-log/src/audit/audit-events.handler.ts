import { toPage, type AuditEntry, type AuditEventsQuery, type AuditVerification, type Page } from '@keyway/contracts';
import { Injectable } from '@nestjs/common';
import { ChainService } from '../chain/chain.service';
import { toEntry } from './audit-event';
import { AuditEventsRepository, type TrailFilter } from './audit-events.repository';

/**
 * A filtered list's total is counted exactly up to this many rows (the deepest `page` reaches
 * 10,000 rows anyway); above, it is the planner's estimate. The unfiltered trail's total is exact
 * at any size: the head row keeps it.
 */
const TOTAL_CAP = 10_000;

/** `GET /v1/audit-events` and `GET /v1/audit-events/verify`. */
@Injectable()
export class AuditEventsHandler {
  constructor(
    private readonly events: AuditEventsRepository,
    private readonly chain: ChainService,
  ) {}

  async list(trail: TrailFilter, q: AuditEventsQuery): Promise<Page<AuditEntry>> {
    const [found, total] = await Promise.all([this.events.pageForTenant(trail, q, undefined), this.events.countForTenant(trail, q, TOTAL_CAP)]);
    const rows = found.slice(0, q.pageSize);
    const hasMore = found.length > q.pageSize;
    const seen = (q.page - 1) * q.pageSize + rows.length + (hasMore ? 1 : 0);
    return { ...toPage(rows.map(toEntry), Math.max(total.n, seen), q), hasMore };
  }

  /** The whole tenant's chain; a mode-bound caller is not told the id of another mode's entry. */
  async verify(trail: TrailFilter): Promise<AuditVerification> {
    const r = await this.chain.verify(trail.tenantId);
    if (r.verification.verified || trail.environment === undefined || r.badEnvironment === undefined || r.badEnvironment === trail.environment) {
      return r.verification;
    }
    return { verified: false, first_bad: { id: null, reason: r.verification.first_bad.reason } };
  }
}
