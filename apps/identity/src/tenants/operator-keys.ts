import { lookupIdOfPrefix, type Actor, type FoundKeys, type IdempotentReplay, type KeyView, type RequestContext } from '@keyway/contracts';
import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { keyView, type KeyRow } from '../keys/key.projection';
import { KeysHandler } from '../keys/keys.handler';

/**
 * The operator's incident tools on keys: find a key by the prefix someone reported (in any
 * tenant), and revoke it with a reason. Nothing here reads or returns a secret or a hash.
 */
@Injectable()
export class OperatorKeys {
  constructor(
    private readonly ds: DataSource,
    private readonly keys: KeysHandler,
  ) {}

  /**
   * By the look-up id inside the prefix, through `key_credentials` (its primary key): a prefix of
   * an older secret, rotated away since, still finds its key, which answers with its current prefix.
   */
  async find(prefix: string): Promise<FoundKeys> {
    const lookupId = lookupIdOfPrefix(prefix);
    if (lookupId === undefined) return { data: [] };
    const environment = prefix.startsWith('kw_test_') ? 'test' : 'live';
    const rows: Array<KeyRow & { tenant_name: string | null }> = await this.ds.query(
      `SELECT k.*, t.rate_limit_ceiling, t.name AS tenant_name
         FROM key_credentials c JOIN keys k ON k.id = c.key_id LEFT JOIN tenants t ON t.id = k.tenant_id
        WHERE c.lookup_id = $1 AND k.environment = $2`,
      [lookupId, environment],
    );
    return {
      data: rows.map((row) => {
        const v = keyView(row);
        return {
          id: v.id,
          tenant: { id: row.tenant_id, name: row.tenant_name },
          name: v.name,
          prefix: v.prefix,
          environment: v.environment,
          status: v.status,
          scopes: v.scopes,
          root: v.root,
          created_at: v.created_at,
          last_used_at: v.last_used_at,
        };
      }),
    };
  }

  /**
   * A revoke like a tenant's own (the same command, so every gateway drops the key before this
   * answers), in whichever tenant holds the key, with the operator as actor and the reason in the
   * `revoked` event: the tenant's trail shows who stopped its key and why.
   */
  async revoke(id: string, reason: string, actor: Actor, idempotency?: RequestContext['idempotency']): Promise<KeyView | IdempotentReplay> {
    return this.keys.revoke({ tenant_id: null, actor, ...(idempotency && { idempotency }) }, id, reason);
  }
}
