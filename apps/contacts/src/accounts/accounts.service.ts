import type { AccountView, CreateAccountBody, IdempotentReplay, Page, PageQuery, UpdateAccountBody, UpsertAccountBody } from '@keyway/contracts';
import { idempotent } from '@keyway/database';
import { Injectable } from '@nestjs/common';
import { InjectDataSource, InjectRepository } from '@nestjs/typeorm';
import { DataSource, Repository } from 'typeorm';
import type { z } from 'zod';
import { recordChanges } from '../events/outbox';
import { modeLiteral, type Caller } from '../shared/caller';
import { Records, type Row, type Upserted } from '../shared/records';
import { accountView, contactView } from '../shared/views';
import { AccountEntity } from './account.entity';
import { AccountError } from './accounts.errors';

@Injectable()
export class AccountsService {
  private readonly records: Records<AccountView>;

  constructor(
    @InjectDataSource() private readonly ds: DataSource,
    @InjectRepository(AccountEntity) repo: Repository<AccountEntity>,
  ) {
    this.records = new Records(ds, repo, {
      table: 'accounts',
      columns: ['name', 'domain', 'external_id', 'properties'],
      view: accountView,
      notFound: (id) => AccountError.notFound(id),
      refusal: (err) => AccountError.fromDatabase(err),
    });
  }

  list(caller: Caller, q: Pick<PageQuery, 'page' | 'pageSize' | 'after'>): Promise<Page<AccountView>> {
    return this.records.list(caller, q, { sql: [], params: [], echo: {} });
  }

  get(caller: Caller, id: string): Promise<AccountView> {
    return this.records.get(caller, id);
  }

  /** Idempotent by key (DESIGN, Idempotency): the record is written in the account's transaction. */
  create(caller: Caller, body: z.infer<typeof CreateAccountBody>): Promise<AccountView | IdempotentReplay> {
    return idempotent(this.ds, caller.request, (m) => this.records.insert(m, caller, body));
  }

  update(caller: Caller, id: string, body: z.infer<typeof UpdateAccountBody>): Promise<AccountView> {
    return this.ds.transaction((m) => this.records.update(m, caller, id, body));
  }

  upsert(caller: Caller, externalId: string, body: z.infer<typeof UpsertAccountBody>): Promise<Upserted<AccountView>> {
    return this.ds.transaction((m) => this.records.upsert(m, caller, externalId, body));
  }

  /**
   * Contacts that pointed at the account keep existing without it: their `account_id` becomes null
   * here, not by the foreign key's action, so each gets its `contacts.updated` event. The account
   * is locked first, so no contact can link to it between that update and the delete.
   */
  remove(caller: Caller, id: string): Promise<void> {
    return this.ds.transaction(async (m) => {
      const mode = modeLiteral(caller.mode);
      const held = await m.query<unknown[]>(`SELECT 1 FROM accounts WHERE tenant_id = $1 AND environment = ${mode} AND id = $2 FOR UPDATE`, [caller.tenantId, id]);
      if (held.length === 0) throw AccountError.notFound(id);
      const [unlinked] = await m.query<[Row[], number]>(
        `UPDATE contacts SET account_id = NULL, updated_at = $3 WHERE tenant_id = $1 AND environment = ${mode} AND account_id = $2 RETURNING *`,
        [caller.tenantId, id, new Date()],
      );
      await recordChanges(m, caller, unlinked.map((r) => ({ type: 'contacts.updated' as const, resourceId: r.id, data: contactView(r) })));
      await this.records.remove(m, caller, id);
    });
  }
}
