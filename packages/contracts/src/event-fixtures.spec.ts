import { eventFixtures } from './event-fixtures';
import { KEY_EVENT_TYPES, KEY_EVENT_VERSIONS, parseKeyEvent } from './events';

describe('event fixtures: every type at every schema version', () => {
  it('holds one fixture per (type, version) of KEY_EVENT_VERSIONS', () => {
    const fixtures = eventFixtures();
    const expected = KEY_EVENT_TYPES.flatMap((type) => Array.from({ length: KEY_EVENT_VERSIONS[type] }, (_, i) => `${type} v${i + 1}`));
    expect(fixtures.map((f) => `${f.type} v${f.schema_version}`)).toEqual(expected);
    expect(new Set(fixtures.map((f) => f.event.id)).size).toBe(fixtures.length);
  });

  it('fails for a version added without its fixture', () => {
    const versions = KEY_EVENT_VERSIONS as Record<string, number>;
    versions.revoked = 2;
    try {
      expect(() => eventFixtures()).toThrow('no fixture for revoked schema_version 2');
    } finally {
      versions.revoked = 1;
    }
  });

  it('reads every fixture at the current version through the one upcast path', () => {
    for (const f of eventFixtures()) {
      const e = parseKeyEvent(f.event);
      expect([e.type, e.schema_version]).toEqual([f.type, KEY_EVENT_VERSIONS[f.type]]);
    }
  });

  it('upcasts a v1 used event with scopes_used null (unknown, never "none"), no rate-limited calls and the current secret', () => {
    const v1 = eventFixtures().find((f) => f.type === 'used' && f.schema_version === 1)!;
    expect(parseKeyEvent(v1.event)).toMatchObject({
      schema_version: 2,
      data: { count: 3, rate_limited: 0, first_at: '2026-01-02T03:04:00.000Z', last_at: '2026-01-02T03:04:05.000Z', scopes_used: null, secret: 'current' },
    });
  });
});
