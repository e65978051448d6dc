import type { KeyCommand } from '../src/keys/key.decider';

/** The decider specs' clock: every command happens at T0 unless a test moves time on. */
export const T0 = new Date('2026-01-01T00:00:00Z');

/** A create command for a live key of tenant `ten_a` that reads contacts; `over` changes any field. */
export const createCommand = (over: Partial<Extract<KeyCommand, { type: 'create' }>> = {}): KeyCommand => ({
  type: 'create',
  tenant_id: 'ten_a',
  name: 'k',
  scopes: ['contacts:read'],
  environment: 'live',
  expires_at: null,
  rate_limit: null,
  metadata: {},
  prefix: 'kw_live_aaaaaaaa',
  ...over,
});
