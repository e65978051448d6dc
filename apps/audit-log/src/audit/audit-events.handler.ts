import { type AuditEntry, type AuditEventsQuery, type AuditVerification, type Page } from '@keyway/contracts';
import { Injectable } from '@nestjs/common';
import { ChainService } from '../chain/chain.service';
import { toEntry } from './audit-event';
import { AuditEventsRepository, type TrailFilter } from './audit-events.repository';

/** `GET /v1/audit-events` and `GET /v1/audit-events/verify`. */
@Injectable()
export class AuditEventsHandler {
  constructor(
    private readonly events: AuditEventsRepository,
    private readonly chain: ChainService,
  ) {}

  async list(trail: TrailFilter, q: AuditEventsQuery): Promise<Page<AuditEntry>> {
    const page = await this.events.pageForTenant(trail, q);
    return { ...page, data: page.data.map(toEntry) };
  }

  /**
   * The whole tenant's chain is walked; a test key is answered with the test entries' count and
   * last link (not the live trail's size), and a mode-bound caller is not told the id of another
   * mode's entry.
   */
  async verify(trail: TrailFilter): Promise<AuditVerification> {
    const r = await this.chain.verify(trail.tenantId, trail.environment);
    if (r.verification.verified || trail.environment === undefined || r.badEnvironment === undefined || r.badEnvironment === trail.environment) {
      return r.verification;
    }
    return { verified: false, first_bad: { id: null, reason: r.verification.first_bad.reason } };
  }
}
