import { KeywayError } from '@keyway/contracts';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { Caller } from '../shared/caller';

@Injectable()
export class TestDataService {
  constructor(@InjectDataSource() private readonly ds: DataSource) {}

  /**
   * Empties the tenant's test contacts and accounts, in one transaction; live rows are never
   * touched (the statements name `test`, whoever asks). Idempotent: a second purge deletes nothing
   * and answers the same. No per-record events: a purge is not a business change, and journeys
   * purges its own test data in the same call.
   */
  async purge(caller: Caller): Promise<void> {
    // The gateway lets only test keys and test-mode sessions here; a live caller is refused again.
    if (caller.mode !== 'test') throw new KeywayError('forbidden', 'Only a test key or a test-mode session can delete test data');
    await this.ds.transaction(async (m) => {
      await m.query(`DELETE FROM contacts WHERE tenant_id = $1 AND environment = 'test'`, [caller.tenantId]);
      await m.query(`DELETE FROM accounts WHERE tenant_id = $1 AND environment = 'test'`, [caller.tenantId]);
      // With the records they answered: a retried create must not replay a contact that is gone.
      await m.query(`DELETE FROM idempotency_keys WHERE tenant_id = $1 AND mode = 'test'`, [caller.tenantId]);
    });
  }
}
