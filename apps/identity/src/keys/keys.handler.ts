import {
  hashKey,
  mintKey,
  newId,
  type Actor,
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
import { decide, evolve, initialKeyState, replay, type KeyCommand, type KeyState } from './key.decider';
import { KeyError, StreamVersionConflict } from './key.errors';
import { keyView, lookupIdOf, projectionCtes, stateRow, type KeyRow } from './key.projection';
import { GatewayInvalidation } from './gateway-invalidation';
import { KeysQueries } from './keys.queries';

export interface CommandContext {
  /** The tenant the caller acts for; null for the system (expiry). */
  tenant_id: string | null;
  actor: Actor;
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
  async create(ctx: CommandContext & { tenant_id: string }, body: CreateKeyBody, em?: EntityManager): Promise<IssuedKey> {
    const id = newId('key');
    const secret = mintKey(body.environment);
    const now = new Date();
    const initial = initialKeyState(id);
    const decided = decide(
      {
        type: 'create',
        tenant_id: ctx.tenant_id,
        name: body.name,
        scopes: body.scopes,
        environment: body.environment,
        expires_at: body.expires_at ?? null,
        rate_limit: body.rate_limit ?? null,
        metadata: body.metadata ?? {},
        prefix: secret.prefix,
      },
      initial,
      now,
    );
    const stored = prepareEvents(id, 0, decided, { tenant_id: ctx.tenant_id, actor: ctx.actor, now });
    const state = stored.reduce(evolve, initial);
    const write = { stored, state, credential: { lookupId: secret.lookupId, hash: hashKey(secret.key), createdAt: now } };
    await (em ? writeNewKeys(em, [write]) : this.batcher.write(write));
    return { ...keyView(stateRow(state, now.toISOString()), now), key: secret.key };
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
    return row ? keyView(row) : this.queries.get(ctx.tenant_id, id);
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
    const view = row ? keyView(row) : await this.queries.get(ctx.tenant_id, id);
    return { ...view, key: secret!.key };
  }

  async revoke(ctx: CommandContext, id: string, reason: string | null): Promise<KeyView> {
    const { row } = await this.execute(ctx, id, () => [{ type: 'revoke', reason }]);
    return row ? keyView(row) : this.queries.get(ctx.tenant_id, id);
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
          const lookupIds = new Set<string>();
          for (const e of committed.stored) {
            lookupIds.add(lookupIdOf(e.prefix));
            if (e.type === 'rotated') lookupIds.add(lookupIdOf(e.data.previous_prefix));
          }
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
    if (state.exists && ctx.tenant_id !== null && state.tenant_id !== ctx.tenant_id) {
      // Another tenant's key: its existence is never revealed.
      throw new KeyError('not_found', `No key ${id}`);
    }
    let current = state;
    const stored: StoredEvent[] = [];
    for (const command of commands(state)) {
      const decided = decide(command, { ...current, tenant_id: current.tenant_id || (ctx.tenant_id ?? '') }, now);
      const prepared = prepareEvents(id, current.version, decided, {
        tenant_id: current.exists ? current.tenant_id : (ctx.tenant_id ?? ''),
        actor: ctx.actor,
        now,
      });
      current = prepared.reduce(evolve, current);
      stored.push(...prepared);
    }
    if (stored.length === 0) return { stored, row: undefined };

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
      rows = await this.ds.query(`WITH ${ctes.join(', ')} SELECT k.* FROM k, (${NOTIFY_RELAY_SQL}) AS notified`, params);
    } catch (err) {
      rethrowVersionConflict(err, id, state.version);
    }
    return { stored, row: rows[0] };
  }
}

interface Committed {
  stored: StoredEvent[];
  /** The key's list row as this command left it; undefined when the commands decided nothing. */
  row: KeyRow | undefined;
}
