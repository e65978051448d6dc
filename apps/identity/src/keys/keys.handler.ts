import {
  hashKey,
  mintKey,
  newId,
  RATE_LIMIT_CEILING_DEFAULTS,
  type Actor,
  type CreateKeyBody,
  type Environment,
  type IssuedKey,
  type IssuedKeyAnswer,
  type KeyView,
  type RateLimitOverride,
  type RotateKeyBody,
  type UpdateKeyBody,
  IdempotentReplay,
  type RequestContext,
} from '@keyway/contracts';
import { idempotent, isUniqueViolation } from '@keyway/database';
import { Inject, Injectable } from '@nestjs/common';
import sql from 'sql-template-tag';
import { DataSource } from 'typeorm';
import { IDENTITY_CONFIG, type IdentityConfig } from '../config';
import { EventStore, pgArray, stamp, StreamVersionConflict, type Queryable, type StoredEvent } from '../event-store/event-store';
import { GroupCommit } from '../event-store/group-commit';
import { decide, evolve, initialKeyState, liveSecrets, lookupIdOf, replay, type GrantContext, type KeyCommand, type KeyState } from './key.decider';
import { KeyError } from './key.errors';
import type { Grantor } from './key.grants';
import { credentialsInsert, keyView, projection, stateRow, type IssuedCredential, type KeyRow } from './key.projection';
import { GatewayInvalidation } from '../gateways/gateway-invalidation';
import { KeysQueries, type Viewer } from './keys.queries';

export interface CommandContext {
  /** The tenant the caller acts for; null for the system (expiry). */
  tenant_id: string | null;
  actor: Actor;
  /** The calling key's scopes and mode (see `grantorOf`); absent for the operator and the system. */
  scopes?: readonly string[];
  environment?: Environment;
  /** The request's Idempotency-Key (a POST through the gateway): the command runs once per key. */
  idempotency?: RequestContext['idempotency'] | undefined;
}

const viewerOf = (ctx: CommandContext): Viewer | null => (ctx.tenant_id === null ? null : { ...ctx, tenant_id: ctx.tenant_id });

/**
 * Only the operator and the system act without a grantor's bounds; any other caller (a key, and
 * later a member) is bounded by the scopes and mode the gateway established for it.
 */
function grantorOf(ctx: CommandContext): Grantor | null {
  if (ctx.actor.type === 'operator' || ctx.actor.type === 'system') return null;
  return { key_id: ctx.actor.id, scopes: ctx.scopes ?? [], environment: ctx.environment ?? 'live' };
}

/** A new key's events, folded state and credential, written with others that arrive together. */
export interface NewKey {
  events: StoredEvent[];
  state: KeyState;
  credential: IssuedCredential;
}

/** What a command on an existing key decided: its commands, and the secret a rotation issues. */
/** What a key's creation or rotation keeps for replay: the answer without its secret (shown once). */
const withoutSecret = (issued: IssuedKey): IssuedKeyAnswer => ({ ...issued, key: null });

interface Plan {
  commands: KeyCommand[];
  secret?: { key: string; lookupId: string; prefix: string };
}

/** Tenant id → its ceiling as the operator set it (null: the defaults). */
type Ceilings = ReadonlyMap<string, RateLimitOverride | null>;

/**
 * The command side, as load → decide → append (Emmett's `handleCommandWithDecider`): read the
 * key's stream, fold it, let the decider turn the command into events (or a typed error), append
 * them with the expected version together with the read-model writes, in one statement. On a lost
 * race, retry a bounded number of times, then 409. Key creation is the hot write and has no
 * stream to read: creates that arrive together share one statement (group commit).
 */
@Injectable()
export class KeysHandler {
  private readonly store: EventStore;
  private readonly creates: GroupCommit<NewKey, Ceilings>;

  constructor(
    private readonly ds: DataSource,
    private readonly queries: KeysQueries,
    private readonly invalidation: GatewayInvalidation,
    @Inject(IDENTITY_CONFIG) private readonly config: IdentityConfig,
  ) {
    this.store = new EventStore(ds);
    this.creates = new GroupCommit((batch) => appendNewKeys(this.store, batch));
  }

  /** Inside a caller's transaction (a new tenant, a new root key) the create joins it. */
  async create(
    ctx: CommandContext & { tenant_id: string },
    body: CreateKeyBody,
    opts: { tx?: Queryable; root?: boolean; ceiling?: RateLimitOverride | null } = {},
  ): Promise<IssuedKey> {
    const by = grantorOf(ctx);
    const environment = body.environment ?? by?.environment ?? 'live';
    // Explicit limits are checked against the ceiling before anything is written; otherwise the
    // write itself answers the ceiling (the hot path keeps one round trip).
    const known = opts.ceiling !== undefined ? opts.ceiling : body.rate_limit ? await this.ceilingOf(ctx.tenant_id, opts.tx) : undefined;
    const id = newId('key');
    const secret = mintKey(environment);
    const now = new Date();
    const initial = initialKeyState(id);
    const command: KeyCommand = {
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
    };
    const events = stamp(id, 0, decide(command, initial, now, { by, ceiling: { ...RATE_LIMIT_CEILING_DEFAULTS, ...(known ?? {}) } }), {
      tenant_id: ctx.tenant_id,
      actor: ctx.actor,
      now,
    });
    const state = events.reduce(evolve, initial);
    const write: NewKey = { events, state, credential: { lookupId: secret.lookupId, keyId: id, hash: hashKey(secret.key), createdAt: now } };
    const ceilings = await (opts.tx ? appendNewKeys(this.store.within(opts.tx), [write]) : this.creates.add(write));
    const rate_limit_ceiling = known !== undefined ? known : (ceilings.get(ctx.tenant_id) ?? null);
    return { ...keyView({ ...stateRow(state, now.toISOString()), rate_limit_ceiling }, now), key: secret.key };
  }

  /**
   * `POST /v1/keys`: with an Idempotency-Key the create and its record share one transaction
   * (outside the group commit), and a retry answers the same key with `key: null`.
   */
  async createOnce(ctx: CommandContext & { tenant_id: string }, body: CreateKeyBody): Promise<IssuedKey | IdempotentReplay> {
    if (ctx.idempotency === undefined) return this.create(ctx, body);
    return idempotent(this.ds, { ...ctx, tenant_id: ctx.tenant_id }, (tx) => this.create(ctx, body, { tx }), { stored: withoutSecret });
  }

  async update(ctx: CommandContext, id: string, body: UpdateKeyBody): Promise<KeyView> {
    const { enabled, ...rest } = body;
    const changes = { ...rest, ...(rest.metadata === null && { metadata: {} }) } as Extract<KeyCommand, { type: 'update' }>['changes'];
    const commands: KeyCommand[] = [];
    if (Object.values(changes).some((v) => v !== undefined)) commands.push({ type: 'update', changes });
    if (enabled !== undefined) commands.push({ type: enabled ? 'enable' : 'disable' });
    const { row } = await this.execute(ctx, id, () => ({ commands }));
    return row ? keyView(row) : this.queries.get(viewerOf(ctx), id);
  }

  async rotate(ctx: CommandContext, id: string, body: RotateKeyBody): Promise<IssuedKey | IdempotentReplay> {
    const plan = (state: KeyState): Plan => {
      const minted = mintKey(state.environment);
      return { commands: [{ type: 'rotate', new_prefix: minted.prefix, grace_period_seconds: body.grace_period_seconds ?? 0 }], secret: minted };
    };
    // A rotation always decides an event (or throws), so the row and the secret are there.
    const answer = ({ row, secret }: Committed): IssuedKey => ({ ...keyView(row!), key: secret!.key });
    if (ctx.idempotency !== undefined) return this.executeOnce(ctx, id, plan, answer, withoutSecret);
    return answer(await this.execute(ctx, id, plan));
  }

  /**
   * Ends a rotation's grace at once (`rotation_completed`); like a revoke, every gateway has
   * dropped the ended secrets before this answers. With no grace to end it decides nothing and
   * answers the key as it is (200, no event): a retry is harmless.
   */
  async completeRotation(ctx: CommandContext, id: string): Promise<KeyView | IdempotentReplay> {
    return this.once(ctx, id, () => ({ commands: [{ type: 'complete_rotation' }] }));
  }

  async revoke(ctx: CommandContext, id: string, reason: string | null): Promise<KeyView | IdempotentReplay> {
    return this.once(ctx, id, () => ({ commands: [{ type: 'revoke', reason }] }));
  }

  /** A command answering the key as it left it (nothing decided: as it is), once per Idempotency-Key. */
  private async once(ctx: CommandContext, id: string, plan: (state: KeyState) => Plan): Promise<KeyView | IdempotentReplay> {
    const answer = ({ row }: Committed): KeyView | Promise<KeyView> => (row ? keyView(row) : this.queries.get(viewerOf(ctx), id));
    if (ctx.idempotency !== undefined) return this.executeOnce(ctx, id, plan, answer);
    return answer(await this.execute(ctx, id, plan));
  }

  async expire(id: string): Promise<StoredEvent[]> {
    return (await this.execute({ tenant_id: null, actor: { type: 'system', id: 'expiry' } }, id, () => ({ commands: [{ type: 'expire' }] }))).events;
  }

  /**
   * Runs a command with bounded retries; after commit, waits for the gateways to drop every secret
   * that opened the key just before (the current one and each inside a grace) and any new one.
   */
  private async execute(ctx: CommandContext, id: string, plan: (state: KeyState) => Plan): Promise<Committed> {
    return this.withRetries(id, async () => {
      const committed = await this.commit(ctx, id, plan);
      return { committed, result: committed };
    });
  }

  /**
   * Like `execute`, once per Idempotency-Key: the append and the record in one transaction (a lost
   * race rolls both back and retries). A retry answers the first answer without the secret
   * (`key: null`), and tells the gateways again about every secret the key ever had: the first
   * call may have committed and died before its invalidation, and a replayed "revoked" must not
   * answer while a gateway still serves the key from its cache.
   */
  private async executeOnce<A>(
    ctx: CommandContext,
    id: string,
    plan: (state: KeyState) => Plan,
    answer: (c: Committed) => A | Promise<A>,
    stored?: (a: A) => unknown,
  ): Promise<A | IdempotentReplay> {
    return this.withRetries(id, async () => {
      let committed: Committed | undefined;
      const result = await idempotent(
        this.ds,
        { ...ctx, tenant_id: ctx.tenant_id ?? '' },
        async (tx) => answer((committed = await this.commit(ctx, id, plan, this.store.within(tx)))),
        stored ? { stored } : {},
      );
      const replayed = result instanceof IdempotentReplay;
      if (replayed) await this.invalidateEverySecret(id);
      return { committed: replayed ? undefined : committed, result };
    });
  }

  private async invalidateEverySecret(id: string): Promise<void> {
    const lookupIds = new Set((await this.store.read(id)).map((e) => lookupIdOf(e.prefix)));
    if (lookupIds.size > 0) await this.invalidation.invalidate({ key_id: id, lookup_ids: [...lookupIds] });
  }

  private async withRetries<R>(id: string, run: () => Promise<{ committed: Committed | undefined; result: R }>): Promise<R> {
    for (let attempt = 1; ; attempt++) {
      try {
        const { committed, result } = await run();
        if (committed !== undefined && committed.events.length > 0) {
          const lookupIds = new Set(committed.liveBefore);
          for (const e of committed.events) lookupIds.add(lookupIdOf(e.prefix));
          await this.invalidation.invalidate({ key_id: id, lookup_ids: [...lookupIds] });
        }
        return result;
      } catch (err) {
        if (!(err instanceof StreamVersionConflict)) throw err;
        if (attempt >= this.config.APPEND_ATTEMPTS) throw new KeyError('conflict', `Key ${id} was changed concurrently; try again`);
        await new Promise((r) => setTimeout(r, Math.random() * 10 * attempt));
      }
    }
  }

  /** Load → decide → append, in two round trips: read the stream, then one statement. */
  private async commit(ctx: CommandContext, id: string, plan: (state: KeyState) => Plan, store: EventStore = this.store): Promise<Committed> {
    const now = new Date();
    const state = replay(id, await store.read(id));
    const by = grantorOf(ctx);
    if (state.exists && ((ctx.tenant_id !== null && state.tenant_id !== ctx.tenant_id) || (by !== null && state.environment !== by.environment))) {
      // Another tenant's key, or a key of the other mode: its existence is never revealed.
      throw new KeyError('not_found', `No key ${id}`);
    }
    const { commands, secret } = plan(state);
    const limitsChange = commands.some((c) => c.type === 'update' && c.changes.rate_limit !== undefined);
    const grant: GrantContext = {
      by,
      ceiling: limitsChange ? { ...RATE_LIMIT_CEILING_DEFAULTS, ...((await this.ceilingOf(state.tenant_id)) ?? {}) } : RATE_LIMIT_CEILING_DEFAULTS,
    };

    let current = state;
    const events: StoredEvent[] = [];
    for (const command of commands) {
      const decided = stamp(id, current.version, decide(command, current, now, grant), { tenant_id: current.tenant_id, actor: ctx.actor, now });
      current = decided.reduce(evolve, current);
      events.push(...decided);
    }
    if (events.length === 0) return { events, row: undefined, liveBefore: [] };

    const also = projection([{ state: current, events }]);
    if (secret) also.issued = credentialsInsert([{ lookupId: secret.lookupId, keyId: id, hash: hashKey(secret.key), createdAt: now }]);
    const rows = await store
      .append<KeyRow>(id, state.version, events, {
        also,
        returning: sql`SELECT k.*, t.rate_limit_ceiling FROM k LEFT JOIN tenants t ON t.id = k.tenant_id`,
      })
      .catch(nameTaken(current));
    return { events, row: rows[0], liveBefore: liveSecrets(state, now), ...(secret && { secret }) };
  }

  /** The tenant's ceiling as the operator set it (null: the defaults). */
  private async ceilingOf(tenantId: string, db: Queryable = this.ds): Promise<RateLimitOverride | null> {
    const rows = (await db.query(`SELECT rate_limit_ceiling FROM tenants WHERE id = $1`, [tenantId])) as Array<{ rate_limit_ceiling: RateLimitOverride | null }>;
    return rows[0]?.rate_limit_ceiling ?? null;
  }
}

/**
 * A key name is unique among a tenant's non-revoked keys of one mode (the partial unique index
 * keys_name_unique on the list rows, written in the same statement as the events): a create or
 * rename that loses is `409 conflict` and wrote nothing. Names the key's mode only: a key of the
 * other mode never blocks it, so the answer reveals nothing across modes.
 */
function nameTaken(state: Pick<KeyState, 'name' | 'environment'>): (err: unknown) => never {
  return (err) => {
    if (!isUniqueViolation(err, 'keys_name_unique')) throw err;
    throw new KeyError('conflict', `A ${state.environment} key named ${JSON.stringify(state.name)} already exists: key names are unique among non-revoked keys`, {
      details: [{ field: 'name', message: 'already used by another key of this mode' }],
    });
  };
}

/** New keys in one statement: their events, list rows and credentials; answers their tenants' ceilings. */
export async function appendNewKeys(store: EventStore, batch: readonly NewKey[]): Promise<Ceilings> {
  const tenants = [...new Set(batch.map((w) => w.state.tenant_id))];
  const rows = await store
    .append<{ id: string; rate_limit_ceiling: RateLimitOverride | null }>(batch[0]!.state.id, 0, batch.flatMap((w) => w.events), {
      also: { ...projection(batch.map((w) => ({ state: w.state, events: w.events }))), c: credentialsInsert(batch.map((w) => w.credential)) },
      returning: sql`SELECT id, rate_limit_ceiling FROM tenants WHERE id = ANY(${pgArray(tenants)}::text[])`,
    })
    // A batch that fails is retried key by key (GroupCommit), so the one that lost hears its own name.
    .catch(nameTaken(batch[0]!.state));
  return new Map(rows.map((r) => [r.id, r.rate_limit_ceiling]));
}

interface Committed {
  events: StoredEvent[];
  /** The key's list row as this command left it; undefined when the commands decided nothing. */
  row: KeyRow | undefined;
  /** Look-up ids of the secrets that opened the key just before these events. */
  liveBefore: string[];
  secret?: Plan['secret'];
}
