import {
  missingScopeForRole,
  newId,
  type Actor,
  type CreateUserBody,
  type IdempotentReplay,
  type Page,
  type PageQuery,
  type RequestContext,
  type Role,
  type UpdateUserBody,
  type UserView,
} from '@keyway/contracts';
import { fetchPage, idempotent, isUniqueViolation, Keyset } from '@keyway/database';
import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { z } from 'zod';
import { GatewayInvalidation } from '../gateways/gateway-invalidation';
import { recordMemberEvent } from './member-events';
import { hashPassword, verifyPassword } from './passwords';
import { UserError } from './users.errors';

export interface UserRow {
  id: string;
  tenant_id: string;
  name: string;
  email: string;
  role: Role;
  password_hash: string;
  created_at: Date;
  updated_at: Date;
}

type Db = Pick<DataSource, 'query'>;
type Caller = Pick<RequestContext, 'tenant_id' | 'actor' | 'scopes' | 'session_hash' | 'environment'>;

const view = (u: UserRow): UserView => ({
  id: u.id,
  name: u.name,
  email: u.email,
  role: u.role,
  created_at: u.created_at.toISOString(),
  updated_at: u.updated_at.toISOString(),
});

/** Newest first, served by users_tenant_list (tenant_id, created_at DESC, id DESC). */
const USER_LIST = new Keyset({ list: 'users', columns: [{ column: 'created_at', type: 'timestamptz' }, { column: 'id', type: 'text' }], direction: 'desc' });

/**
 * Giving a role, or a member's email or password (whoever knows them can sign in as the member),
 * is a grant of the role's scopes: the caller must hold every one (DESIGN "Dashboard and members").
 */
function requireGrant(caller: Caller, role: Role): void {
  requireNotTestKey(caller);
  const missing = missingScopeForRole(caller.scopes, role);
  if (missing !== undefined) throw UserError.cannotGrant(role, missing);
}

/**
 * Members span both modes, so a member made or changed by a test key would carry it out of test
 * mode (a session acts live). Every write of a member is refused to a test key; a session in test
 * mode is a member already and may manage members as its role allows.
 */
function requireNotTestKey(caller: Caller): void {
  if (caller.actor.type === 'key' && caller.environment === 'test') throw UserError.testKey();
}

/**
 * Tenant members. Passwords are argon2id hashes (passwords.ts), never returned, never logged, never
 * in an event. A tenant always keeps an admin: the tenant's row is locked while a demotion or a
 * removal counts its admins, so two concurrent ones cannot both pass.
 */
@Injectable()
export class UsersService {
  constructor(
    private readonly ds: DataSource,
    private readonly invalidation: GatewayInvalidation,
  ) {}

  async list(tenantId: string, q: PageQuery): Promise<Page<UserView>> {
    const page = await fetchPage<UserRow>(this.ds, { select: '*', from: 'users', where: 'tenant_id = $1', params: [tenantId], keyset: USER_LIST, query: q });
    return { ...page, data: page.data.map(view) };
  }

  async get(tenantId: string, id: string): Promise<UserView> {
    return view(await this.find(this.ds, tenantId, id));
  }

  /** `POST /v1/users`, once per Idempotency-Key: the member, its event and the record in one transaction. */
  async createOnce(ctx: RequestContext, body: z.infer<typeof CreateUserBody>): Promise<UserView | IdempotentReplay> {
    requireGrant(ctx, body.role ?? 'viewer');
    // The slow hash before the transaction: no connection is held for it.
    const passwordHash = await hashPassword(body.password);
    if (ctx.idempotency === undefined) return this.ds.transaction((tx) => this.create(ctx.tenant_id, ctx.actor, body, tx, passwordHash));
    return idempotent(this.ds, ctx, (tx) => this.create(ctx.tenant_id, ctx.actor, body, tx, passwordHash));
  }

  /** Inside the caller's transaction (also the operator's tenant creation, for its first admin). */
  async create(tenantId: string, actor: Actor, body: z.infer<typeof CreateUserBody>, tx: Db, passwordHash?: string): Promise<UserView> {
    passwordHash ??= await hashPassword(body.password);
    const role = body.role ?? 'viewer';
    const rows: UserRow[] = await this.unique(() =>
      tx.query(
        `INSERT INTO users (id, tenant_id, name, email, role, password_hash, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, now(), now()) RETURNING *`,
        [newId('user'), tenantId, body.name, body.email, role, passwordHash],
      ),
    );
    const row = rows[0]!;
    await recordMemberEvent(tx, { type: 'created', tenant_id: tenantId, member_id: row.id, actor, data: { name: row.name, email: row.email, role: row.role } });
    return view(row);
  }

  /**
   * A name alone is any `users:write` caller's to change. A role, an email or a password is a
   * grant of the member's role, before and after: the caller must hold both roles' scopes. A
   * member changing their own email or password gives the current password. A new password ends
   * the member's other sessions; every change reaches the gateways before the answer.
   */
  async update(ctx: Caller, id: string, body: UpdateUserBody): Promise<UserView> {
    const self = ctx.actor.type === 'member' && ctx.actor.id === id;
    const before = await this.find(this.ds, ctx.tenant_id, id);
    if (body.role !== undefined || body.email !== undefined || body.password !== undefined) {
      requireGrant(ctx, before.role);
      if (body.role !== undefined) requireGrant(ctx, body.role);
    }
    if (self && (body.password !== undefined || (body.email !== undefined && body.email !== before.email))) {
      if (body.current_password === undefined) throw UserError.currentPasswordNeeded();
      if (!(await verifyPassword(before.password_hash, body.current_password))) throw UserError.currentPasswordWrong();
    }
    requireNotTestKey(ctx);
    const passwordHash = body.password === undefined ? undefined : await hashPassword(body.password);

    const { row, ended } = await this.ds.transaction(async (tx) => {
      if (body.role !== undefined && body.role !== 'admin') await this.keepAnAdmin(tx, ctx.tenant_id, id);
      // TypeORM answers UPDATE … RETURNING with [rows, count].
      const [rows] = await this.unique<[UserRow[], number]>(() =>
        tx.query(
          // The grant was checked against the role read before the slow hash: the write holds only
          // while that role is still the member's (a promotion in between must not let a
          // developer-level caller set a new admin's password).
          `UPDATE users SET name = COALESCE($3, name), email = COALESCE($4, email), role = COALESCE($5, role),
                  password_hash = COALESCE($6, password_hash), updated_at = now()
            WHERE tenant_id = $1 AND id = $2 AND role = $7 RETURNING *`,
          [ctx.tenant_id, id, body.name ?? null, body.email ?? null, body.role ?? null, passwordHash ?? null, before.role],
        ),
      );
      const updated = rows[0];
      if (!updated) throw (await this.exists(tx, ctx.tenant_id, id)) ? UserError.changedMeanwhile(id) : UserError.notFound(id);
      let sessionsEnded: number | undefined;
      if (passwordHash !== undefined) {
        // Every session of the member but the one making the change (their own, when it is theirs).
        const [, count] = (await tx.query(`DELETE FROM sessions WHERE member_id = $1 AND hash IS DISTINCT FROM $2`, [id, self ? (ctx.session_hash ?? null) : null])) as [unknown, number];
        sessionsEnded = count;
      }
      await recordMemberEvent(tx, {
        type: 'updated',
        tenant_id: ctx.tenant_id,
        member_id: id,
        actor: ctx.actor,
        data: {
          ...(body.name !== undefined && { name: updated.name }),
          ...(body.email !== undefined && { email: updated.email }),
          ...(body.role !== undefined && { role: updated.role }),
          ...(passwordHash !== undefined && { password_changed: true as const, sessions_ended: sessionsEnded }),
        },
      });
      return { row: updated, ended: sessionsEnded };
    });
    // The role (and so the scopes) and the profile cached with each session are stale now.
    if (ended !== undefined || body.role !== undefined || body.email !== undefined || body.name !== undefined) await this.dropSessions(id);
    return view(row);
  }

  /** Removing a member is a grant of their role too (a `users:write` key may not remove an admin). */
  async remove(ctx: Caller, id: string): Promise<void> {
    const before = await this.find(this.ds, ctx.tenant_id, id);
    requireGrant(ctx, before.role);
    await this.ds.transaction(async (tx) => {
      await this.keepAnAdmin(tx, ctx.tenant_id, id);
      // TypeORM answers DELETE … RETURNING with [rows, count]; the sessions go with the member (cascade).
      // Only while the member still has the role the grant was checked against (see update).
      const [rows] = (await tx.query(`DELETE FROM users WHERE tenant_id = $1 AND id = $2 AND role = $3 RETURNING *`, [ctx.tenant_id, id, before.role])) as [UserRow[], number];
      const gone = rows[0];
      if (!gone) throw (await this.exists(tx, ctx.tenant_id, id)) ? UserError.changedMeanwhile(id) : UserError.notFound(id);
      await recordMemberEvent(tx, { type: 'deleted', tenant_id: ctx.tenant_id, member_id: id, actor: ctx.actor, data: { email: gone.email, role: gone.role } });
    });
    await this.dropSessions(id);
  }

  private async exists(tx: Db, tenantId: string, id: string): Promise<boolean> {
    const rows = (await tx.query(`SELECT 1 FROM users WHERE tenant_id = $1 AND id = $2`, [tenantId, id])) as unknown[];
    return rows.length > 0;
  }

  /**
   * Refuses (409) when `id` is the tenant's last admin. The tenant's row is locked first, so
   * concurrent demotions and removals in one tenant take turns and each counts what the previous
   * one left.
   */
  private async keepAnAdmin(tx: Db, tenantId: string, id: string): Promise<void> {
    await tx.query(`SELECT id FROM tenants WHERE id = $1 FOR UPDATE`, [tenantId]);
    const rows: Array<{ id: string }> = await tx.query(`SELECT id FROM users WHERE tenant_id = $1 AND role = 'admin'`, [tenantId]);
    if (rows.some((r) => r.id === id) && rows.length === 1) throw UserError.lastAdmin();
  }

  /** Every gateway drops the member's cached sessions before the change answers. */
  async dropSessions(memberId: string): Promise<void> {
    await this.invalidation.invalidate({ key_id: `member:${memberId}`, lookup_ids: [], member_id: memberId });
  }

  private async find(db: Db, tenantId: string, id: string): Promise<UserRow> {
    const rows: UserRow[] = await db.query(`SELECT * FROM users WHERE tenant_id = $1 AND id = $2`, [tenantId, id]);
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
