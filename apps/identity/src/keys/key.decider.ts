import type { Environment, KeyEventDataOf, KeyLifecycleEvent, KeyStatus, Metadata, RateLimitOverride, Scope } from '@keyway/contracts';
import { KeyError } from './key.errors';

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
  version: 0,
});

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
    }
  | { type: 'update'; changes: KeyEventDataOf<'updated'> }
  | { type: 'enable' }
  | { type: 'disable' }
  | { type: 'rotate'; new_prefix: string; grace_period_seconds: number }
  | { type: 'revoke'; reason: string | null }
  | { type: 'expire' };

type LifecycleType = KeyLifecycleEvent['type'];
/** What `decide` produces: the envelope fields that belong to the domain. */
export type DecidedEvent = {
  [T in LifecycleType]: { type: T; prefix: string; data: KeyEventDataOf<T> };
}[LifecycleType];
export type RecordedEvent = DecidedEvent & { occurred_at: string; tenant_id: string };

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

export function decide(command: KeyCommand, state: KeyState, now: Date): DecidedEvent[] {
  switch (command.type) {
    case 'create': {
      if (state.exists) throw new KeyError('conflict', `Key ${state.id} already exists`);
      if (command.expires_at !== null && Date.parse(command.expires_at) <= now.getTime()) {
        throw new KeyError('invalid_request', 'expires_at must be in the future', {
          details: [{ field: 'expires_at', message: 'must be in the future' }],
        });
      }
      const { type: _t, prefix, ...data } = command;
      return [{ type: 'created', prefix, data: { ...data, expires_at: command.expires_at === null ? null : new Date(command.expires_at).toISOString() } }];
    }
    case 'update': {
      requireLive(state, 'changed');
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
      return { ...next, prefix: event.prefix, rotated_at: event.occurred_at };
    case 'revoked':
      return { ...next, revoked: true };
    case 'expired':
      return { ...next, expired: true };
  }
}

export const replay = (id: string, events: readonly RecordedEvent[]): KeyState => events.reduce(evolve, initialKeyState(id));
