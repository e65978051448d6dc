import { newId, type CreateUserBody, type IdempotentReplay, type RequestContext, type Page, type PageQuery, type UpdateUserBody, type UserView } from '@keyway/contracts';
import { fetchPage, idempotent, isUniqueViolation, Keyset } from '@keyway/database';
import { Injectable } from '@nestjs/common';
import { hash, verify } from '@node-rs/argon2';
import { DataSource } from 'typeorm';
import type { z } from 'zod';
import { UserError } from './users.errors';

interface UserRow {
  id: string;
  tenant_id: string;
  name: string;
  email: string;
  password_hash: string;
  created_at: Date;
  updated_at: Date;
}

const view = (u: UserRow): UserView => ({
  id: u.id,
  name: u.name,
  email: u.email,
  created_at: u.created_at.toISOString(),
  updated_at: u.updated_at.toISOString(),
});

/** Newest first, served by users_tenant_list (tenant_id, created_at DESC, id DESC). */
const USER_LIST = new Keyset({ list: 'users', columns: [{ column: 'created_at', type: 'timestamptz' }, { column: 'id', type: 'text' }], direction: 'desc' });

/** Tenant members. Passwords are argon2id hashes, never returned, never logged. */
@Injectable()
export class UsersService {
  constructor(private readonly ds: DataSource) {}

  async list(tenantId: string, q: PageQuery): Promise<Page<UserView>> {
    const page = await fetchPage<UserRow>(this.ds, { select: '*', from: 'users', where: 'tenant_id = $1', params: [tenantId], keyset: USER_LIST, query: q });
    return { ...page, data: page.data.map(view) };
  }

  async get(tenantId: string, id: string): Promise<UserView> {
    return view(await this.find(tenantId, id));
  }

  /** `POST /v1/users`, once per Idempotency-Key: the member and the record in one transaction. */
  async createOnce(ctx: RequestContext, body: z.infer<typeof CreateUserBody>): Promise<UserView | IdempotentReplay> {
    if (ctx.idempotency === undefined) return this.create(ctx.tenant_id, body);
    // The slow hash before the transaction: no connection is held for it.
    const passwordHash = await hash(body.password);
    return idempotent(this.ds, ctx, (tx) => this.create(ctx.tenant_id, body, tx, passwordHash));
  }

  async create(tenantId: string, body: z.infer<typeof CreateUserBody>, db: Pick<DataSource, 'query'> = this.ds, passwordHash?: string): Promise<UserView> {
    passwordHash ??= await hash(body.password);
    const rows: UserRow[] = await this.unique(() =>
      db.query(
        `INSERT INTO users (id, tenant_id, name, email, password_hash, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, now(), now()) RETURNING *`,
        [newId('user'), tenantId, body.name, body.email, passwordHash],
      ),
    );
    return view(rows[0]!);
  }

  async update(tenantId: string, id: string, body: z.infer<typeof UpdateUserBody>): Promise<UserView> {
    const current = await this.find(tenantId, id);
    const passwordHash = body.password ? await hash(body.password) : current.password_hash;
    // TypeORM answers UPDATE … RETURNING with [rows, count].
    const [rows] = await this.unique<[UserRow[], number]>(() =>
      this.ds.query(
        `UPDATE users SET name = $3, email = $4, password_hash = $5, updated_at = now()
          WHERE tenant_id = $1 AND id = $2 RETURNING *`,
        [tenantId, id, body.name ?? current.name, body.email ?? current.email, passwordHash],
      ),
    );
    if (!rows[0]) throw UserError.notFound(id);
    return view(rows[0]);
  }

  async remove(tenantId: string, id: string): Promise<void> {
    // TypeORM answers DELETE with [rows, count].
    const [, count] = (await this.ds.query(`DELETE FROM users WHERE tenant_id = $1 AND id = $2`, [tenantId, id])) as [unknown[], number];
    if (count === 0) throw UserError.notFound(id);
  }

  /** For the dashboard's sign-in: true when the email and password match a member of the tenant. */
  async checkPassword(tenantId: string, email: string, password: string): Promise<UserView | null> {
    const rows: UserRow[] = await this.ds.query(`SELECT * FROM users WHERE tenant_id = $1 AND lower(email) = lower($2)`, [tenantId, email]);
    const row = rows[0];
    if (!row) return null;
    return (await verify(row.password_hash, password)) ? view(row) : null;
  }

  private async find(tenantId: string, id: string): Promise<UserRow> {
    const rows: UserRow[] = await this.ds.query(`SELECT * FROM users WHERE tenant_id = $1 AND id = $2`, [tenantId, id]);
    if (!rows[0]) throw UserError.notFound(id);
    return rows[0];
  }

  private async unique<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (isUniqueViolation(err)) throw UserError.emailTaken();
      throw err;
    }
  }
}
