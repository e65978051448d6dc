import {
  newId,
  toPage,
  type ContactListQuery,
  type ContactView,
  type CreateContactBody,
  type Page,
  type UpdateContactBody,
} from '@keyway/contracts';
import { byIdLoader, isUniqueViolation } from '@keyway/database';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import type { z } from 'zod';
import { AccountsService } from '../accounts/accounts.service';
import { ContactEntity } from './contact.entity';
import { ContactError } from './contacts.errors';

function view(c: ContactEntity): ContactView {
  return {
    id: c.id,
    type: c.type as ContactView['type'],
    name: c.name,
    email: c.email,
    external_id: c.external_id,
    account_id: c.account_id,
    properties: c.properties,
    created_at: c.created_at.toISOString(),
    updated_at: c.updated_at.toISOString(),
  };
}

@Injectable()
export class ContactsService {
  /** GET by id, coalesced with the other GETs of the same turn into one query (see byIdLoader). */
  private readonly byId: (tenantId: string, id: string) => Promise<ContactEntity | null>;

  constructor(
    @InjectRepository(ContactEntity) private readonly contacts: Repository<ContactEntity>,
    private readonly accounts: AccountsService,
  ) {
    this.byId = byIdLoader(contacts);
  }

  async list(tenantId: string, q: z.infer<typeof ContactListQuery>): Promise<Page<ContactView>> {
    const qb = this.contacts.createQueryBuilder('c').where('c.tenant_id = :tenantId', { tenantId });
    if (q.q) qb.andWhere('(c.name ILIKE :like OR c.email ILIKE :like)', { like: `%${q.q.replace(/[\\%_]/g, '\\$&')}%` });
    if (q.type) qb.andWhere('c.type = :type', { type: q.type });
    if (q.account_id) qb.andWhere('c.account_id = :accountId', { accountId: q.account_id });
    const [rows, total] = await qb
      .orderBy('c.created_at', 'DESC')
      .addOrderBy('c.id', 'DESC')
      .skip((q.page - 1) * q.pageSize)
      .take(q.pageSize)
      .getManyAndCount();
    return toPage(rows.map(view), total, q);
  }

  async get(tenantId: string, id: string): Promise<ContactView> {
    const entity = await this.byId(tenantId, id);
    if (!entity) throw ContactError.notFound(id);
    return view(entity);
  }

  async create(tenantId: string, body: z.infer<typeof CreateContactBody>): Promise<ContactView> {
    if (body.account_id) await this.assertAccount(tenantId, body.account_id);
    const now = new Date();
    const entity = this.contacts.create({
      id: newId('contact'),
      tenant_id: tenantId,
      type: body.type,
      name: body.name,
      email: body.email,
      external_id: body.external_id ?? null,
      account_id: body.account_id ?? null,
      properties: body.properties,
      created_at: now,
      updated_at: now,
    });
    await this.save(entity);
    return view(entity);
  }

  async update(tenantId: string, id: string, body: z.infer<typeof UpdateContactBody>): Promise<ContactView> {
    // The row lock keeps a concurrent delete from being undone: save() inserts a row it can't find.
    return this.contacts.manager.transaction(async (m) => {
      const entity = await m.findOne(ContactEntity, { where: { tenant_id: tenantId, id }, lock: { mode: 'pessimistic_write' } });
      if (!entity) throw ContactError.notFound(id);
      if (body.account_id) await this.assertAccount(tenantId, body.account_id);
      Object.assign(entity, Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined)));
      entity.updated_at = new Date();
      await this.save(entity, m.getRepository(ContactEntity));
      return view(entity);
    });
  }

  /** Through the by-id loader: the checks of one turn share a query with the GETs. */
  async exists(tenantId: string, id: string): Promise<boolean> {
    return (await this.byId(tenantId, id)) !== null;
  }

  async remove(tenantId: string, id: string): Promise<void> {
    const result = await this.contacts.delete({ tenant_id: tenantId, id });
    if (!result.affected) throw ContactError.notFound(id);
  }

  private async assertAccount(tenantId: string, accountId: string): Promise<void> {
    if (!(await this.accounts.exists(tenantId, accountId))) throw ContactError.unknownAccount(accountId);
  }

  private async save(entity: ContactEntity, repo: Repository<ContactEntity> = this.contacts): Promise<void> {
    try {
      await repo.save(entity);
    } catch (err) {
      throw isUniqueViolation(err) ? ContactError.duplicate() : err;
    }
  }
}
