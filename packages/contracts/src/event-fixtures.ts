import { KEY_EVENT_TYPES, KEY_EVENT_VERSIONS, type KeyEventType } from './events';

const AT = '2026-01-02T03:04:05.000Z';
const EARLIER = '2026-01-02T03:04:00.000Z';

/**
 * A payload of every event type at every schema version, as a writer of that version published
 * it. Stored events are never rewritten, so every consumer must still read each of them: the
 * cross-consumer test (test/foundation/event-fixtures.int-spec.ts) runs `eventFixtures()` through
 * each one's parse and apply path. A new version in `KEY_EVENT_VERSIONS` without its payload here
 * makes `eventFixtures()` throw, so it cannot ship without its fixture (and its upcaster).
 */
export const EVENT_FIXTURE_PAYLOADS: { readonly [T in KeyEventType]: Readonly<Record<number, unknown>> } = {
  created: {
    1: { name: 'fixture', scopes: ['contacts:write', 'keys:read'], environment: 'test', expires_at: null, rate_limit: null, metadata: { team: 'growth' } },
  },
  updated: { 1: { name: 'fixture-renamed', scopes: ['contacts:read', 'keys:read'] } },
  enabled: { 1: {} },
  disabled: { 1: {} },
  rotated: { 1: { previous_prefix: 'kw_test_fixture0', previous_valid_until: '2026-01-03T03:04:05.000Z' } },
  rotation_completed: { 1: { ended_prefixes: ['kw_test_fixture0'] } },
  revoked: { 1: { reason: 'fixture' } },
  expired: { 1: { expires_at: AT } },
  used: {
    // v1: admitted calls of the current secret only, no scopes.
    1: { count: 3, first_used_at: EARLIER, last_used_at: AT },
    2: { count: 5, rate_limited: 2, first_at: EARLIER, last_at: AT, scopes_used: ['contacts:read'], secret: 'current' },
  },
};

export interface EventFixture {
  type: KeyEventType;
  schema_version: number;
  /** The message body as it was published at that version (not upcast). */
  event: Record<string, unknown>;
}

/**
 * One fixture per type and schema version (1..KEY_EVENT_VERSIONS[type]), for one key of one tenant.
 * Lifecycle events carry increasing `version`s in the order of KEY_EVENT_TYPES, so a consumer that
 * orders by version takes them all. Throws naming the first (type, version) without a payload.
 */
export function eventFixtures(opts: { tenantId?: string; keyId?: string; idPrefix?: string } = {}): EventFixture[] {
  const out: EventFixture[] = [];
  let version = 0;
  for (const type of KEY_EVENT_TYPES) {
    for (let v = 1; v <= KEY_EVENT_VERSIONS[type]; v++) {
      const data = EVENT_FIXTURE_PAYLOADS[type][v];
      if (data === undefined) throw new Error(`no fixture for ${type} schema_version ${v}: add its payload to EVENT_FIXTURE_PAYLOADS`);
      out.push({
        type,
        schema_version: v,
        event: {
          id: `${opts.idPrefix ?? 'evt_fixture'}_${type}_v${v}`,
          type,
          schema_version: v,
          occurred_at: AT,
          tenant_id: opts.tenantId ?? 'ten_fixture',
          key_id: opts.keyId ?? 'key_fixture',
          prefix: 'kw_test_fixture1',
          ...(type === 'used' ? {} : { version: ++version }),
          actor: type === 'used' ? { type: 'system', id: 'gw-fixture' } : { type: 'key', id: 'key_caller' },
          data,
        },
      });
    }
  }
  return out;
}
