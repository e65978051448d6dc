import {
  ALL_SCOPES,
  newId,
  RATE_LIMIT_CEILING_DEFAULTS,
  tenantEventEnvelope,
  tenantEventSubject,
  type Actor,
  type CreatedTenant,
  type CreateTenantBody,
  type IdempotentReplay,
  type RequestContext,
  type Environment,
  type IssuedRootKey,
  type Page,
  type PageQuery,
  type RateLimitOverride,
  type TenantEventDataOf,
  type TenantView,
  type UpdateTenantBody,
} from '@keyway/contracts';
import { fetchPage, idempotent, Keyset } from '@keyway/database';
import { Injectable, Logger } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { GatewayInvalidation } from '../gateways/gateway-invalidation';
import { KeysHandler } from '../keys/keys.handler';
import { MEMBER_OUTBOX_TABLE } from '../migrations/1796083400000-members-and-sessions';
import { hashPassword } from '../users/passwords';
import { UsersService } from '../users/users.service';
import { TenantError } from './tenants.errors';

interface TenantRow {
  id: string;
  name: string;
  rate_limit_ceiling: RateLimitOverride | null;
  created_at: Date;
}

const view = (row: TenantRow): TenantView => ({
  id: row.id,
  name: row.name,
  rate_limit_ceiling: { ...RATE_LIMIT_CEILING_DEFAULTS, ...(row.rate_limit_ceiling ?? {}) },
  created_at: row.created_at.toISOString(),
});

/**
 * Newest first, for the operator's `GET /admin/v1/tenants` (and `keyway tenants list`). Tenants
 * are few (one per customer), so the sort runs over the primary key's table without an index of
 * its own; `after` keeps deep walks as cheap as the first page all the same.
 */
const TENANT_LIST = new Keyset({ list: 'tenants', columns: [{ column: 'created_at', type: 'timestamptz' }, { column: 'id', type: 'text' }], direction: 'desc' });

const rootKey = (environment: Environment) => ({ name: environment === 'live' ? 'Root key' : 'Test root key', scopes: [...ALL_SCOPES], environment });

/** Tenants are the operator's: made, re-limited and given a new root key through `/admin/v1`. */
@Injectable()
export class TenantsHandler {
  private readonly logger = new Logger('tenants');
  constructor(
    private readonly ds: DataSource,
    private readonly keys: KeysHandler,
    private readonly invalidation: GatewayInvalidation,
    private readonly users: UsersService,
  ) {}

  async list(q: PageQuery): Promise<Page<TenantView>> {
    const page = await fetchPage<TenantRow>(this.ds, { select: '*', from: 'tenants', where: 'TRUE', params: [], keyset: TENANT_LIST, query: q });
    return { ...page, data: page.data.map(view) };
  }

  async get(id: string): Promise<TenantView> {
    const rows: TenantRow[] = await this.ds.query(`SELECT * FROM tenants WHERE id = $1`, [id]);
    if (!rows[0]) throw new TenantError('not_found', `No tenant ${id}`);
    return view(rows[0]);
  }

  /** The tenant, its root key (every scope) and its first admin (if asked) commit together or not at all. */
  /**
   * With an Idempotency-Key (`POST /admin/v1/tenants`), once per key in the operator's scope: a
   * retry answers the same tenant and root key with `key: null` (the secret is shown once).
   */
  async create(body: CreateTenantBody, actor: Actor, idempotency?: RequestContext['idempotency']): Promise<CreatedTenant | IdempotentReplay> {
    const stored = (t: CreatedTenant) => ({ ...t, root_key: { ...t.root_key, key: null } });
    // The first admin's slow hash before the transaction: no connection is held for it.
    const adminHash = body.admin === undefined ? undefined : await hashPassword(body.admin.password);
    return idempotent(this.ds, { tenant_id: '', idempotency }, async (tx) => {
      const ceiling = body.rate_limit_ceiling ?? null;
      const rows: TenantRow[] = await tx.query(
        `INSERT INTO tenants (id, name, rate_limit_ceiling, created_at) VALUES ($1, $2, $3, now()) RETURNING *`,
        [newId('tenant'), body.name, ceiling === null ? null : JSON.stringify(ceiling)],
      );
      const tenant = view(rows[0]!);
      const root = await this.keys.create({ tenant_id: tenant.id, actor }, rootKey('live'), { tx, root: true, ceiling });
      const admin = body.admin === undefined ? undefined : await this.users.create(tenant.id, actor, { ...body.admin, role: 'admin' }, tx, adminHash);
      return { tenant, root_key: { id: root.id, prefix: root.prefix, key: root.key, scopes: root.scopes }, ...(admin && { admin }) };
    }, { stored });
  }

  /**
   * A changed ceiling binds every key of the tenant from the next request: the gateways drop the
   * tenant's cached keys before this answers (the ceiling caps each key's limits when read).
   * What actually changed goes into the tenant's trail as `keyway.tenants.updated` (actor: the
   * operator), through the member outbox in the same transaction: recorded if and only if it
   * commits; a PATCH that changes nothing records nothing.
   */
  async update(id: string, body: UpdateTenantBody, actor: Actor): Promise<TenantView> {
    const ceiling = body.rate_limit_ceiling;
    const { row, changes } = await this.ds.transaction(async (tx: EntityManager) => {
      const before: TenantRow[] = await tx.query(`SELECT * FROM tenants WHERE id = $1 FOR UPDATE`, [id]);
      if (!before[0]) throw new TenantError('not_found', `No tenant ${id}`);
      const rows: TenantRow[][] = await tx.query(
        `UPDATE tenants SET name = COALESCE($2, name),
                rate_limit_ceiling = CASE WHEN $3 THEN $4::jsonb ELSE rate_limit_ceiling END
          WHERE id = $1 RETURNING *`,
        [id, body.name ?? null, ceiling !== undefined, ceiling ? JSON.stringify(ceiling) : null],
      );
      // TypeORM answers an UPDATE … RETURNING with [rows, count].
      const after = rows[0]![0]!;
      const data: TenantEventDataOf<'updated'> = {};
      if (after.name !== before[0].name) data.name = after.name;
      if (JSON.stringify(after.rate_limit_ceiling ?? null) !== JSON.stringify(before[0].rate_limit_ceiling ?? null)) data.rate_limit_ceiling = after.rate_limit_ceiling ?? null;
      if (Object.keys(data).length > 0) {
        const envelope = tenantEventEnvelope({ id: newId('event'), type: 'updated', occurred_at: new Date().toISOString(), tenant_id: id, actor, data });
        await tx.query(`INSERT INTO ${MEMBER_OUTBOX_TABLE} (id, subject, payload) VALUES ($1, $2, $3)`, [envelope.id, tenantEventSubject('updated'), JSON.stringify(envelope)]);
      }
      return { row: after, changes: data };
    });
    if (changes.rate_limit_ceiling !== undefined) await this.invalidation.invalidate({ key_id: `tenant:${id}`, lookup_ids: [], tenant_id: id });
    return view(row);
  }

  /**
   * The way back from a lock-out: a new root key (its secret shown once), then every older root
   * key of the tenant revoked. The new key exists before the old ones stop, so the tenant is never
   * left without one.
   */
  async issueRootKey(tenantId: string, environment: Environment, actor: Actor): Promise<IssuedRootKey> {
    const { root, old } = await this.ds.transaction(async (tx: EntityManager) => {
      const tenants: TenantRow[] = await tx.query(`SELECT * FROM tenants WHERE id = $1 FOR UPDATE`, [tenantId]);
      if (!tenants[0]) throw new TenantError('not_found', `No tenant ${tenantId}`);
      const before: Array<{ id: string }> = await tx.query(`SELECT id FROM keys WHERE tenant_id = $1 AND environment = $2 AND root AND NOT revoked`, [
        tenantId,
        environment,
      ]);
      const issued = await this.keys.create({ tenant_id: tenantId, actor }, rootKey(environment), { tx, root: true, ceiling: tenants[0].rate_limit_ceiling });
      return { root: issued, old: before.map((r) => r.id) };
    });
    // The new secret must reach the operator whatever happens next: a revoke that fails is logged
    // and left out of `revoked_key_ids` (calling the route again revokes what is left).
    const revoked: string[] = [];
    for (const id of old) {
      try {
        await this.keys.revoke({ tenant_id: tenantId, actor }, id, `replaced by root key ${root.prefix}`);
        revoked.push(id);
      } catch (err) {
        this.logger.error(`root key ${id} of ${tenantId} was not revoked: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    return { root_key: { id: root.id, prefix: root.prefix, key: root.key, scopes: root.scopes }, revoked_key_ids: revoked };
  }
}
