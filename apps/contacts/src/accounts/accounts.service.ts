import {
  newId,
  toPage,
  type AccountView,
  type CreateAccountBody,
  type Page,
  type PageQuery,
  type UpdateAccountBody,
} from '@keyway/contracts';
import { byIdLoader } from '@keyway/database';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import type { z } from 'zod';
import { AccountEntity } from './account.entity';
import { AccountError } from './accounts.errors';

function view(a: AccountEntity): AccountView {
  return {
    id: a.id,
    name: a.name,
    domain: a.domain,
    properties: a.properties,
    created_at: a.created_at.toISOString(),
    updated_at: a.updated_at.toISOString(),
  };
}

@Injectable()
export class AccountsService {
  /** GET by id, coalesced with the other GETs of the same turn into one query (see byIdLoader). */
  private readonly byId: (tenantId: string, id: string) => Promise<AccountEntity | null>;

  constructor(@InjectRepository(AccountEntity) private readonly accounts: Repository<AccountEntity>) {
    this.byId = byIdLoader(accounts);
  }

  async list(tenantId: string, q: PageQuery): Promise<Page<AccountView>> {
    const [rows, total] = await this.accounts
      .createQueryBuilder('a')
      .where('a.tenant_id = :tenantId', { tenantId })
      .orderBy('a.created_at', 'DESC')
      .addOrderBy('a.id', 'DESC')
      .skip((q.page - 1) * q.pageSize)
      .take(q.pageSize)
      .getManyAndCount();
    return toPage(rows.map(view), total, q);
  }

  async get(tenantId: string, id: string): Promise<AccountView> {
    const entity = await this.byId(tenantId, id);
    if (!entity) throw AccountError.notFound(id);
    return view(entity);
  }

  async create(tenantId: string, body: z.infer<typeof CreateAccountBody>): Promise<AccountView> {
    const now = new Date();
    const entity = this.accounts.create({
      id: newId('account'),
      tenant_id: tenantId,
      name: body.name,
      domain: body.domain ?? null,
      properties: body.properties,
      created_at: now,
      updated_at: now,
    });
    await this.accounts.save(entity);
    return view(entity);
  }

  async update(tenantId: string, id: string, body: z.infer<typeof UpdateAccountBody>): Promise<AccountView> {
    // The row lock keeps a concurrent delete from being undone: save() inserts a row it can't find.
    return this.accounts.manager.transaction(async (m) => {
      const entity = await m.findOne(AccountEntity, { where: { tenant_id: tenantId, id }, lock: { mode: 'pessimistic_write' } });
      if (!entity) throw AccountError.notFound(id);
      if (body.name !== undefined) entity.name = body.name;
      if (body.domain !== undefined) entity.domain = body.domain;
      if (body.properties !== undefined) entity.properties = body.properties;
      entity.updated_at = new Date();
      await m.save(entity);
      return view(entity);
    });
  }

  /** Contacts that pointed at the account keep existing; the foreign key sets their account_id to null. */
  async remove(tenantId: string, id: string): Promise<void> {
    const result = await this.accounts.delete({ tenant_id: tenantId, id });
    if (!result.affected) throw AccountError.notFound(id);
  }

  /** For other features of this service that reference an account (contacts.account_id). */
  exists(tenantId: string, id: string): Promise<boolean> {
    return this.accounts.existsBy({ tenant_id: tenantId, id });
  }
}
