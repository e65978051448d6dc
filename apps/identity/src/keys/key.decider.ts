import { keyPrefix, lookupIdOfPrefix, RATE_LIMIT_CEILING_DEFAULTS, type Actor, type Environment, type KeyEventDataOf, type KeyLifecycleEvent, type KeyStatus, type Metadata, type RateLimit, type RateLimitOverride, type Scope } from '@keyway/contracts';
import { KeyError } from './key.errors';
import { requireMayGrant, requireMayManage, requireNotRaisingOwn, requireOwnMode, requireWithinCeiling, type Grantor } from './key.grants';

/**
 * The key aggregate as two pure functions (Emmett's decider): `decide` turns a command and the
 * current state into events or a typed error; `evolve` folds one event into the state. No I/O:
 * secrets are minted by the caller and only their public prefix reaches the events.
 */
export interface KeyState {
  exists: boolean;
  id: string;
  tenant_id: string;
  name: string;
  scopes: Scope[];
  environment: Environment;
  enabled: boolean;
  revoked: boolean;
  expired: boolean;
  expires_at: string | null;
  rate_limit: RateLimitOverride | null;
  metadata: Metadata;
  prefix: string;
  created_at: string | null;
  rotated_at: string | null;
  root: boolean;
  /**
   * Every secret the key was ever issued, by look-up id, and until when it works (null: the
   * current one). A rotation retires all older secrets, so revoking, disabling or re-scoping
   * reaches each one still inside a grace, not only the current and previous ones.
   */
  secrets: ReadonlyArray<{ lookup_id: string; valid_until: string | null }>;
  /** Number of events in the stream: the expected version of the next append. */
  version: number;
}

export const initialKeyState = (id: string): KeyState => ({
  exists: false,
  id,
  tenant_id: '',
  name: '',
  scopes: [],
  environment: 'live',
  enabled: true,
  revoked: false,
  expired: false,
  expires_at: null,
  rate_limit: null,
  metadata: {},
  prefix: '',
  created_at: null,
  rotated_at: null,
  root: false,
  secrets: [],
  version: 0,
});

/**
 * The look-up id of a prefix identity minted, read by contracts' one parser. A prefix that does not
 * parse cannot come from mintKey: the stored stream is corrupt, and folding it further would
 * index a credential under a wrong id.
 */
export function lookupIdOf(prefix: string): string {
  const id = lookupIdOfPrefix(prefix);
  if (id === undefined) throw new Error(`not a key prefix: ${JSON.stringify(prefix)}`);
  return id;
}

/** The secrets that still open the key at `now`: the current one and those inside a grace. */
export function liveSecrets(state: KeyState, now: Date): string[] {
  const t = now.getTime();
  return state.secrets.filter((s) => s.valid_until === null || Date.parse(s.valid_until) > t).map((s) => s.lookup_id);
}

/**
 * What a command may give: who asks (null for the operator and the system) and the tenant's
 * ceiling. Tests of the lifecycle alone leave it out (UNRESTRICTED).
 */
export interface GrantContext {
  by: Grantor | null;
  ceiling: RateLimit;
}
const UNRESTRICTED: GrantContext = { by: null, ceiling: RATE_LIMIT_CEILING_DEFAULTS };

export type KeyCommand =
  | {
      type: 'create';
      tenant_id: string;
      name: string;
      scopes: Scope[];
      environment: Environment;
      expires_at: string | null;
      rate_limit: RateLimitOverride | null;
      metadata: Metadata;
      prefix: string;
      /** Only the operator's tenant routes make root keys. */
      root?: boolean;
    }
  | { type: 'update'; changes: KeyEventDataOf<'updated'> }
  | { type: 'enable' }
  | { type: 'disable' }
  | { type: 'rotate'; new_prefix: string; grace_period_seconds: number }
  /** End a rotation's grace now (`POST /v1/keys/{id}/rotate/complete`). */
  | { type: 'complete_rotation' }
  | { type: 'revoke'; reason: string | null }
  | { type: 'expire' };

type LifecycleType = KeyLifecycleEvent['type'];
/** What `decide` produces: the envelope fields that belong to the domain. */
export type DecidedEvent = {
  [T in LifecycleType]: { type: T; prefix: string; data: KeyEventDataOf<T> };
}[LifecycleType];
export type RecordedEvent = DecidedEvent & { occurred_at: string; tenant_id: string; actor?: Actor };

export function statusOf(state: KeyState, now: Date): KeyStatus {
  if (state.revoked) return 'revoked';
  if (state.expired || (state.expires_at !== null && Date.parse(state.expires_at) <= now.getTime())) return 'expired';
  if (!state.enabled) return 'disabled';
  return 'active';
}

function requireLive(state: KeyState, action: string): void {
  if (!state.exists) throw new KeyError('not_found', `No key ${state.id}`);
  if (state.revoked) throw new KeyError('conflict', `Key ${state.prefix} is revoked: it cannot be ${action}`);
}

export function decide(command: KeyCommand, state: KeyState, now: Date, grant: GrantContext = UNRESTRICTED): DecidedEvent[] {
  const { by, ceiling } = grant;
  if (command.type !== 'create' && command.type !== 'expire' && state.exists) requireMayManage(by, state);
  switch (command.type) {
    case 'create': {
      if (state.exists) throw new KeyError('conflict', `Key ${state.id} already exists`);
      if (command.root && by !== null) throw new KeyError('forbidden', 'Only the operator makes root keys');
      requireOwnMode(by, command.environment);
      requireMayGrant(by, command.scopes);
      requireWithinCeiling(command.rate_limit, ceiling);
      if (command.expires_at !== null && Date.parse(command.expires_at) <= now.getTime()) {
        throw new KeyError('invalid_request', 'expires_at must be in the future', {
          details: [{ field: 'expires_at', message: 'must be in the future' }],
        });
      }
      const { type: _t, prefix, root, ...data } = command;
      const expires_at = command.expires_at === null ? null : new Date(command.expires_at).toISOString();
      return [{ type: 'created', prefix, data: { ...data, expires_at, root: root === true } }];
    }
    case 'update': {
      requireLive(state, 'changed');
      if (command.changes.scopes !== undefined) requireMayGrant(by, command.changes.scopes);
      if (command.changes.rate_limit !== undefined) {
        requireWithinCeiling(command.changes.rate_limit, ceiling);
        requireNotRaisingOwn(by, state, command.changes.rate_limit, ceiling);
      }
      const changes = Object.fromEntries(Object.entries(command.changes).filter(([, v]) => v !== undefined));
      if (Object.keys(changes).length === 0) return [];
      return [{ type: 'updated', prefix: state.prefix, data: changes }];
    }
    case 'enable':
      requireLive(state, 're-enabled');
      return state.enabled ? [] : [{ type: 'enabled', prefix: state.prefix, data: {} }];
    case 'disable':
      requireLive(state, 'disabled');
      return state.enabled ? [{ type: 'disabled', prefix: state.prefix, data: {} }] : [];
    case 'rotate': {
      requireLive(state, 'rotated');
      if (statusOf(state, now) === 'expired') throw new KeyError('conflict', `Key ${state.prefix} has expired: it cannot be rotated`);
      const until = command.grace_period_seconds > 0 ? new Date(now.getTime() + command.grace_period_seconds * 1000).toISOString() : null;
      return [{ type: 'rotated', prefix: command.new_prefix, data: { previous_prefix: state.prefix, previous_valid_until: until } }];
    }
    case 'complete_rotation': {
      requireLive(state, 'changed');
      // The older secrets still inside a grace. None: there is no grace to end, and no event, so
      // a retried call (or one racing the grace's own end) answers the key as it is.
      const current = state.secrets[state.secrets.length - 1]?.lookup_id;
      const ended = liveSecrets(state, now).filter((id) => id !== current);
      if (ended.length === 0) return [];
      return [{ type: 'rotation_completed', prefix: state.prefix, data: { ended_prefixes: ended.map((id) => keyPrefix(state.environment, id)) } }];
    }
    case 'revoke':
      requireLive(state, 'revoked again');
      return [{ type: 'revoked', prefix: state.prefix, data: { reason: command.reason } }];
    case 'expire':
      if (!state.exists || state.revoked || state.expired) return [];
      if (state.expires_at === null || Date.parse(state.expires_at) > now.getTime()) return [];
      return [{ type: 'expired', prefix: state.prefix, data: { expires_at: state.expires_at } }];
  }
}

export function evolve(state: KeyState, event: RecordedEvent): KeyState {
  const next: KeyState = { ...state, version: state.version + 1 };
  switch (event.type) {
    case 'created':
      return {
        ...next,
        exists: true,
        tenant_id: event.tenant_id,
        name: event.data.name,
        scopes: event.data.scopes,
        environment: event.data.environment,
        expires_at: event.data.expires_at,
        rate_limit: event.data.rate_limit,
        metadata: event.data.metadata,
        prefix: event.prefix,
        created_at: event.occurred_at,
        // Events written before the mark have no `root`: only the operator made keys then, and
        // each was a root key (the grants migration marked the same ones).
        root: event.data.root ?? event.actor?.type === 'operator',
        secrets: [{ lookup_id: lookupIdOf(event.prefix), valid_until: null }],
      };
    case 'updated': {
      const d = event.data;
      return {
        ...next,
        ...(d.name !== undefined && { name: d.name }),
        ...(d.scopes !== undefined && { scopes: d.scopes }),
        ...(d.rate_limit !== undefined && { rate_limit: d.rate_limit }),
        ...(d.metadata !== undefined && { metadata: d.metadata }),
      };
    }
    case 'enabled':
      return { ...next, enabled: true };
    case 'disabled':
      return { ...next, enabled: false };
    case 'rotated':
      return {
        ...next,
        prefix: event.prefix,
        rotated_at: event.occurred_at,
        secrets: [...retire(state.secrets, event.data.previous_valid_until ?? event.occurred_at), { lookup_id: lookupIdOf(event.prefix), valid_until: null }],
      };
    case 'rotation_completed':
      // Every secret but the current one (always the last) ends at the event, whatever
      // `ended_prefixes` lists (what was still live): no older secret outlives a completion, and
      // a grace that already ended keeps its sooner end.
      return { ...next, secrets: [...retire(state.secrets.slice(0, -1), event.occurred_at), ...state.secrets.slice(-1)] };
    case 'revoked':
      return { ...next, revoked: true };
    case 'expired':
      return { ...next, expired: true };
  }
}

/**
 * A rotation ends every older secret at `until` (now, or the end of its grace), and never moves an
 * end later: a secret whose grace ends sooner keeps its sooner end.
 */
function retire(secrets: KeyState['secrets'], until: string): KeyState['secrets'] {
  const u = Date.parse(until);
  return secrets.map((s) => (s.valid_until !== null && Date.parse(s.valid_until) <= u ? s : { ...s, valid_until: until }));
}

export const replay = (id: string, events: readonly RecordedEvent[]): KeyState => events.reduce(evolve, initialKeyState(id));
