import {
  hashKey,
  mintKey,
  newId,
  RATE_LIMIT_CEILING_DEFAULTS,
  type Actor,
  type Environment,
  type RateLimitOverride,
  type CreateKeyBody,
  type IssuedKey,
  type KeyView,
  type RotateKeyBody,
  type UpdateKeyBody,
} from '@keyway/contracts';
import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { IDENTITY_CONFIG, type IdentityConfig } from '../config';
import { CreateBatcher, writeNewKeys } from './create-batcher';
import { eventsInsertSql, NOTIFY_RELAY_SQL, prepareEvents, readStream, rethrowVersionConflict, type StoredEvent } from './event-store';
import { decide, evolve, initialKeyState, liveSecrets, replay, type GrantContext, type KeyCommand, type KeyState } from './key.decider';
import type { Grantor } from './key.grants';
import { KeyError, StreamVersionConflict } from './key.errors';
import { keyView, lookupIdOf, projectionCtes, stateRow, type KeyRow } from './key.projection';
import { GatewayInvalidation } from './gateway-invalidation';
import { KeysQueries, type Viewer } from './keys.queries';

export interface CommandContext {
  /** The tenant the caller acts for; null for the system (expiry). */
  tenant_id: string | null;
  actor: Actor;
  /** The calling key's scopes and mode (see `grantorOf`); absent for the operator and the system. */
  scopes?: readonly string[];
  environment?: Environment;
}

const viewerOf = (ctx: CommandContext): Viewer | null => (ctx.tenant_id === null ? null : { ...ctx, tenant_id: ctx.tenant_id });

/** A key acts within its grants; the operator and the system are not bounded by them. */
export function grantorOf(ctx: CommandContext): Grantor | null {
  if (ctx.actor.type !== 'key') return null;
  return { key_id: ctx.actor.id, scopes: ctx.scopes ?? [], environment: ctx.environment ?? 'live' };
}

interface NewSecret {
  key: string;
  lookupId: string;
  prefix: string;
}

/**
 * The command side: load the stream, decide, append with the expected version and update the
 * read models in one transaction; on a lost race, retry a bounded number of times, then 409.
 */
@Injectable()
export class KeysHandler {
  private readonly batcher: CreateBatcher;

  constructor(
    private readonly ds: DataSource,
    private readonly queries: KeysQueries,
    private readonly invalidation: GatewayInvalidation,
    @Inject(IDENTITY_CONFIG) private readonly config: IdentityConfig,
  ) {
    this.batcher = new CreateBatcher(ds);
  }

  /**
   * Creation is the hot write: a new stream has no history to load and nobody to invalidate, so
   * the event, the list row and the credential go in as one statement, and creates that arrive
   * together share it (group commit). Inside a caller's transaction (a new tenant) it joins that.
   */
  async create(
    ctx: CommandContext & { tenant_id: string },
    body: CreateKeyBody,
    opts: { em?: EntityManager; root?: boolean; ceiling?: RateLimitOverride | null } = {},
  ): Promise<IssuedKey> {
    const by = grantorOf(ctx);
    const environment = body.environment ?? by?.environment ?? 'live';
    // Explicit limits are checked against the ceiling before anything is written; otherwise the
    // write itself answers the ceiling (the hot path keeps one round trip).
    const known = opts.ceiling !== undefined ? opts.ceiling : body.rate_limit ? await this.ceilingOf(ctx.tenant_id, opts.em) : undefined;
    const ceiling = { ...RATE_LIMIT_CEILING_DEFAULTS, ...(known ?? {}) };
    const id = newId('key');
    const secret = mintKey(environment);
    const now = new Date();
    const initial = initialKeyState(id);
    const decided = decide(
      {
        type: 'create',
        tenant_id: ctx.tenant_id,
        name: body.name,
        scopes: body.scopes,
        environment,
        expires_at: body.expires_at ?? null,
        rate_limit: body.rate_limit ?? null,
        metadata: body.metadata ?? {},
        prefix: secret.prefix,
        ...(opts.root && { root: true }),
      },
      initial,
      now,
      { by, ceiling },
    );
    const stored = prepareEvents(id, 0, decided, { tenant_id: ctx.tenant_id, actor: ctx.actor, now });
    const state = stored.reduce(evolve, initial);
    const write = { stored, state, credential: { lookupId: secret.lookupId, hash: hashKey(secret.key), createdAt: now } };
    const ceilings = await (opts.em ? writeNewKeys(opts.em, [write]) : this.batcher.write(write));
    const rate_limit_ceiling = known !== undefined ? known : (ceilings.get(ctx.tenant_id) ?? null);
    return { ...keyView({ ...stateRow(state, now.toISOString()), rate_limit_ceiling }, now), key: secret.key };
  }

  /** The tenant's ceiling as the operator set it (null: the defaults). */
  private async ceilingOf(tenantId: string, em: EntityManager = this.ds.manager): Promise<RateLimitOverride | null> {
    const rows: Array<{ rate_limit_ceiling: RateLimitOverride | null }> = await em.query(`SELECT rate_limit_ceiling FROM tenants WHERE id = $1`, [tenantId]);
    return rows[0]?.rate_limit_ceiling ?? null;
  }

  async update(ctx: CommandContext, id: string, body: UpdateKeyBody): Promise<KeyView> {
    const { enabled, ...rest } = body;
    const changes = {
      ...rest,
      ...(rest.metadata === null && { metadata: {} }),
    } as Extract<KeyCommand, { type: 'update' }>['changes'];
    const { row } = await this.execute(ctx, id, () => {
      const commands: KeyCommand[] = [];
      if (Object.values(changes).some((v) => v !== undefined)) commands.push({ type: 'update', changes });
      if (enabled !== undefined) commands.push({ type: enabled ? 'enable' : 'disable' });
      return commands;
    });
    return row ? keyView(row) : this.queries.get(viewerOf(ctx), id);
  }

  async rotate(ctx: CommandContext, id: string, body: RotateKeyBody): Promise<IssuedKey> {
    let secret: NewSecret | undefined;
    const { row } = await this.execute(
      ctx,
      id,
      (state) => {
        secret = mintKey(state.environment);
        return [{ type: 'rotate', new_prefix: secret.prefix, grace_period_seconds: body.grace_period_seconds ?? 0 }];
      },
      () => secret,
    );
    const view = row ? keyView(row) : await this.queries.get(viewerOf(ctx), id);
    return { ...view, key: secret!.key };
  }

  async revoke(ctx: CommandContext, id: string, reason: string | null): Promise<KeyView> {
    const { row } = await this.execute(ctx, id, () => [{ type: 'revoke', reason }]);
    return row ? keyView(row) : this.queries.get(viewerOf(ctx), id);
  }

  async expire(id: string): Promise<StoredEvent[]> {
    return (await this.execute({ tenant_id: null, actor: { type: 'system', id: 'expiry' } }, id, () => [{ type: 'expire' }])).stored;
  }

  /** Runs commands with retries; after commit, waits for the gateways to drop the key. */
  private async execute(
    ctx: CommandContext,
    id: string,
    commands: (state: KeyState) => KeyCommand[],
    secret: () => NewSecret | undefined = () => undefined,
  ): Promise<Committed> {
    for (let attempt = 1; ; attempt++) {
      try {
        const committed = await this.commit(id, ctx, commands, secret);
        if (committed.stored.length > 0) {
          // Every secret that opened the key before this command, not only the current and the
          // previous one: a key rotated twice within a grace has three, and a revoke ends all.
          const lookupIds = new Set(committed.liveBefore);
          for (const e of committed.stored) lookupIds.add(lookupIdOf(e.prefix));
          await this.invalidation.invalidate({ key_id: id, lookup_ids: [...lookupIds] });
        }
        return committed;
      } catch (err) {
        if (!(err instanceof StreamVersionConflict)) throw err;
        if (attempt >= this.config.APPEND_ATTEMPTS) {
          throw new KeyError('conflict', `Key ${id} was changed concurrently; try again`);
        }
        await new Promise((r) => setTimeout(r, Math.random() * 10 * attempt));
      }
    }
  }

  /**
   * Reads the stream, decides, and writes in one statement: the events (whose unique
   * (stream_id, version) is the optimistic concurrency check), the read models and, for a
   * rotation, the new credential, with the relay's NOTIFY; it returns the list row the answer
   * shows. One statement is one transaction, so they commit together or not at all, in two round
   * trips where BEGIN … COMMIT and a read-back took seven to nine: under load each round trip waits
   * for the CPU, and a revoke is answered only after this commit.
   */
  private async commit(
    id: string,
    ctx: CommandContext,
    commands: (state: KeyState) => KeyCommand[],
    rotatedSecret: () => NewSecret | undefined,
  ): Promise<Committed> {
    const now = new Date();
    const state = replay(id, await readStream(this.ds.manager, id));
    const by = grantorOf(ctx);
    if (state.exists && ((ctx.tenant_id !== null && state.tenant_id !== ctx.tenant_id) || (by !== null && state.environment !== by.environment))) {
      // Another tenant's key, or a key of the other mode: its existence is never revealed.
      throw new KeyError('not_found', `No key ${id}`);
    }
    const planned = commands(state);
    const limitsChange = planned.some((c) => c.type === 'update' && c.changes.rate_limit !== undefined);
    const grant: GrantContext = {
      by,
      ceiling: limitsChange ? { ...RATE_LIMIT_CEILING_DEFAULTS, ...((await this.ceilingOf(state.tenant_id)) ?? {}) } : RATE_LIMIT_CEILING_DEFAULTS,
    };
    let current = state;
    const stored: StoredEvent[] = [];
    for (const command of planned) {
      const decided = decide(command, { ...current, tenant_id: current.tenant_id || (ctx.tenant_id ?? '') }, now, grant);
      const prepared = prepareEvents(id, current.version, decided, {
        tenant_id: current.exists ? current.tenant_id : (ctx.tenant_id ?? ''),
        actor: ctx.actor,
        now,
      });
      current = prepared.reduce(evolve, current);
      stored.push(...prepared);
    }
    if (stored.length === 0) return { stored, row: undefined, liveBefore: [] };

    const params: unknown[] = [];
    const ctes = [`e AS (${eventsInsertSql(stored, params)})`, ...projectionCtes(current, stored, params)];
    const secret = stored.some((e) => e.type === 'rotated') ? rotatedSecret() : undefined;
    if (secret) {
      params.push(secret.lookupId, id, hashKey(secret.key), now);
      const $ = (n: number) => `$${params.length - 4 + n}`;
      ctes.push(`issued AS (INSERT INTO key_credentials (lookup_id, key_id, hash, valid_until, created_at) VALUES (${$(1)}, ${$(2)}, ${$(3)}, NULL, ${$(4)}))`);
    }
    let rows: KeyRow[];
    try {
      rows = await this.ds.query(
        `WITH ${ctes.join(', ')} SELECT k.*, t.rate_limit_ceiling FROM k LEFT JOIN tenants t ON t.id = k.tenant_id, (${NOTIFY_RELAY_SQL}) AS notified`,
        params,
      );
    } catch (err) {
      rethrowVersionConflict(err, id, state.version);
    }
    return { stored, row: rows[0], liveBefore: liveSecrets(state, now) };
  }
}

interface Committed {
  stored: StoredEvent[];
  /** Look-up ids of the secrets that opened the key just before these events. */
  liveBefore: string[];
  /** The key's list row as this command left it; undefined when the commands decided nothing. */
  row: KeyRow | undefined;
}
