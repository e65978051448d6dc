import type { PageQuery } from '@keyway/contracts';
import { Injectable } from '@nestjs/common';
import { InjectDataSource, InjectRepository } from '@nestjs/typeorm';
import { DataSource, Repository } from 'typeorm';
import type { AuditRecord } from './audit-event';
import { AuditEventEntity } from './audit-event.entity';

// One statement for the whole batch with a fixed number of parameters (one array per column), so
// the statement text is the same for every batch size and never nears the 65,535-parameter limit.
// Raw SQL on purpose: this is the hot path, and the query builder's per-row work would dominate it.
const INSERT_BATCH = `
  INSERT INTO audit_events
    (id, tenant_id, key_id, type, schema_version, occurred_at, prefix, actor_type, actor_id, data, stream_seq)
  SELECT * FROM unnest(
    $1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::timestamptz[],
    $7::text[], $8::text[], $9::text[], $10::jsonb[], $11::bigint[])
  ON CONFLICT (id) DO NOTHING`;

@Injectable()
export class AuditEventsRepository {
  constructor(
    @InjectDataSource() private readonly ds: DataSource,
    @InjectRepository(AuditEventEntity) private readonly rows: Repository<AuditEventEntity>,
  ) {}

  /** Stores every record whose id is new; a known id (a redelivery) changes nothing. */
  async insert(records: readonly AuditRecord[]): Promise<void> {
    if (records.length === 0) return;
    const cols: [string[], string[], string[], string[], number[], string[], string[], string[], string[], string[], string[]] =
      [[], [], [], [], [], [], [], [], [], [], []];
    for (const { event: e, streamSeq } of records) {
      cols[0].push(e.id);
      cols[1].push(e.tenant_id);
      cols[2].push(e.key_id);
      cols[3].push(e.type);
      cols[4].push(e.schema_version);
      cols[5].push(e.occurred_at);
      cols[6].push(e.prefix);
      cols[7].push(e.actor.type);
      cols[8].push(e.actor.id);
      cols[9].push(JSON.stringify(e.data));
      cols[10].push(String(streamSeq));
    }
    await this.ds.query(INSERT_BATCH, cols);
  }

  /** One page of a key's events in a tenant, newest first; ties keep stream order, newest first. */
  async pageForKey(tenantId: string, keyId: string, q: PageQuery): Promise<[AuditEventEntity[], number]> {
    return this.rows.findAndCount({
      where: { tenant_id: tenantId, key_id: keyId },
      order: { occurred_at: 'DESC', stream_seq: 'DESC', id: 'DESC' },
      skip: (q.page - 1) * q.pageSize,
      take: q.pageSize,
    });
  }
}
