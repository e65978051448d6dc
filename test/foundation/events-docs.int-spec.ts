import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as contracts from '@keyway/contracts';
import { KEY_EVENT_TYPES, KEY_EVENT_VERSIONS, KeyEvent, MEMBER_EVENT_TYPES, MEMBER_EVENT_VERSIONS, STREAMS, TENANT_EVENT_TYPES, TENANT_EVENT_VERSIONS, deadLetterSubject, eventSubject, keyEventEnvelope, memberEventEnvelope, memberEventSubject, tenantEventEnvelope, tenantEventSubject, type KeyEventType } from '@keyway/contracts';
import { DEAD_LETTER_HEADERS } from '@keyway/messaging';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { z } from 'zod';

/** The generator (plain JS, so `npm run docs:events` needs no TypeScript): what this test uses of it. */
interface EventsDocs {
  EVENTS_DIR: string;
  EVENTS_MD: string;
  eventDocs(input: { contracts: unknown; z: unknown; markdown: string; deadLetterHeaders: Record<string, string> }): Map<string, string>;
}
// require: an .mjs without declarations (jest transforms it to CommonJS).
const { EVENTS_DIR, EVENTS_MD, eventDocs } = require('../../scripts/lib/events-docs.mjs') as EventsDocs;
// The published names (docs/events.md links them; teams fetch them by these names).
const ASYNCAPI_FILE = 'docs/events/asyncapi.json';
const schemaFile = (subject: string, version: number): string => `${subject}.v${version}.json`;

/**
 * The published key-event contract (docs/events.md, docs/events/*) is what `npm run docs:events`
 * makes from packages/contracts today: a contract change without regenerating fails here.
 */
const ROOT = join(__dirname, '..', '..');
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

/** Everything generated from `source`, written to a fresh temp dir; returns the dir and the paths. */
function regenerate(source: typeof contracts): { dir: string; paths: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'keyway-events-docs-'));
  const files = eventDocs({ contracts: source, z, markdown: read(EVENTS_MD), deadLetterHeaders: DEAD_LETTER_HEADERS });
  for (const [path, content] of files) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return { dir, paths: [...files.keys()] };
}

/** What differs between the checked-in files and a regeneration (empty: in step). */
function differences(source: typeof contracts): string[] {
  const { dir, paths } = regenerate(source);
  try {
    const out = paths.filter((p) => !existsSync(join(ROOT, p)) || read(p) !== readFileSync(join(dir, p), 'utf8')).map((p) => `${p} differs`);
    // Checked in but not generated: only an older version of a type is kept (frozen, since
    // stored events at that version are never rewritten and a replay still delivers them).
    for (const name of readdirSync(join(ROOT, EVENTS_DIR))) {
      const path = `${EVENTS_DIR}/${name}`;
      if (paths.includes(path)) continue;
      const m = /^keyway\.keys\.([a-z_]+)\.v(\d+)\.json$/.exec(name);
      const type = m?.[1] as KeyEventType | undefined;
      if (!m || !type || !(type in source.KEY_EVENT_VERSIONS) || Number(m[2]) >= source.KEY_EVENT_VERSIONS[type]) out.push(`${path} is not generated`);
    }
    for (const type of source.KEY_EVENT_TYPES) {
      for (let v = 1; v <= source.KEY_EVENT_VERSIONS[type]; v++) {
        const path = `${EVENTS_DIR}/${schemaFile(source.eventSubject(type), v)}`;
        if (!existsSync(join(ROOT, path)) && !paths.includes(path)) out.push(`${path} is missing`);
      }
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One event of each type, as producers build it. */
const base = {
  id: 'evt_01JD8X7Q2R3S4T5V6W7X8Y9Z0A',
  occurred_at: '2026-01-02T03:04:05.678Z',
  tenant_id: 'ten_01JD8X7Q2R3S4T5V6W7X8Y9Z0B',
  key_id: 'key_01JD8X7Q2R3S4T5V6W7X8Y9Z0C',
  prefix: 'kw_live_abcd1234',
  actor: { type: 'user' as const, id: 'usr_01JD8X7Q2R3S4T5V6W7X8Y9Z0D' },
};
const samples = [
  keyEventEnvelope({ ...base, type: 'created', version: 1, data: { name: 'ci', scopes: ['contacts:read'], environment: 'live', expires_at: null, rate_limit: { per_minute: 60 }, metadata: { team: 'growth', n: 1 }, root: false } }),
  keyEventEnvelope({ ...base, type: 'updated', version: 2, data: { name: 'ci-2', rate_limit: null } }),
  keyEventEnvelope({ ...base, type: 'disabled', version: 3, data: {} }),
  keyEventEnvelope({ ...base, type: 'enabled', version: 4, data: {} }),
  keyEventEnvelope({ ...base, type: 'rotated', version: 5, data: { previous_prefix: 'kw_live_zzzz9999', previous_valid_until: '2026-01-03T00:00:00.000Z' } }),
  keyEventEnvelope({ ...base, type: 'revoked', version: 6, data: { reason: null } }),
  keyEventEnvelope({ ...base, type: 'expired', version: 7, data: { expires_at: '2026-01-02T00:00:00.000Z' } }),
  keyEventEnvelope({ ...base, type: 'used', actor: { type: 'system', id: 'gw-1' }, data: { count: 3, rate_limited: 1, first_at: base.occurred_at, last_at: base.occurred_at, scopes_used: ['contacts:read'], secret: 'previous' } }),
  keyEventEnvelope({ ...base, type: 'rotation_completed', version: 8, actor: { type: 'member', id: 'usr_01JD8X7Q2R3S4T5V6W7X8Y9Z0D' }, data: { ended_prefixes: ['kw_live_zzzz9999'] } }),
];
/** `used` as gateways published it before schema_version 2 (a replay of KEYWAY still holds some). */
const usedV1 = { ...base, type: 'used', schema_version: 1, actor: { type: 'system', id: 'gw-1' }, data: { count: 3, first_used_at: base.occurred_at, last_used_at: base.occurred_at } };

describe('the published key-event contract (docs/events)', () => {
  it('is what npm run docs:events generates from the contracts today', () => {
    expect(differences(contracts)).toEqual([]);
  });

  it('would fail on a contract change that was not regenerated', () => {
    // A new schema version of `used` without its schema file, AsyncAPI message and table.
    const bumped = { ...contracts, KEY_EVENT_VERSIONS: { ...KEY_EVENT_VERSIONS, used: KEY_EVENT_VERSIONS.used + 1 } };
    expect(differences(bumped)).toEqual(
      expect.arrayContaining([`${EVENTS_DIR}/keyway.keys.used.v${KEY_EVENT_VERSIONS.used + 1}.json differs`, `${ASYNCAPI_FILE} differs`, `${EVENTS_MD} differs`]),
    );
  });

  it('refuses to generate a field nobody has described', () => {
    const extended = KeyEvent.options.map((o) => (o.shape.type.value === 'revoked' ? o.extend({ data: z.object({ reason: z.string().nullable(), by_whom: z.string() }) }) : o));
    const changed = { ...contracts, KeyEvent: z.discriminatedUnion('type', extended as [z.ZodObject, ...z.ZodObject[]]) };
    expect(() => eventDocs({ contracts: changed, z, markdown: read(EVENTS_MD), deadLetterHeaders: DEAD_LETTER_HEADERS })).toThrow(/revoked: no note for by_whom/);
    expect(() => eventDocs({ contracts, z, markdown: read(EVENTS_MD), deadLetterHeaders: { ...DEAD_LETTER_HEADERS, added: 'X-Added' } })).toThrow(/dead-letter headers added/);
  });

  describe('its JSON Schemas', () => {
    // allowUnionTypes: zod writes `type: [..]` lists, valid JSON Schema that strict ajv refuses by default.
    const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
    addFormats(ajv);
    const validatorOf = (type: KeyEventType, version = KEY_EVENT_VERSIONS[type]) =>
      ajv.compile(JSON.parse(read(`${EVENTS_DIR}/${schemaFile(eventSubject(type), version)}`)) as object);

    it('cover every event type, and the samples cover them too', () => {
      expect(new Set(samples.map((s) => s.type))).toEqual(new Set(KEY_EVENT_TYPES));
    });

    it.each(samples.map((s) => [s.type, s] as const))('accept a %s event as keyEventEnvelope builds it, and so does parseKeyEvent', (type, sample) => {
      const validate = validatorOf(type);
      const valid = validate(sample);
      expect(valid ? null : validate.errors).toBeNull();
      expect(contracts.parseKeyEvent(JSON.parse(JSON.stringify(sample)))).toEqual(sample);
    });

    it.each(samples.map((s) => [s.type, s] as const))('refuse a %s event without a required field, of another type or schema_version, as zod does', (type, sample) => {
      const validate = validatorOf(type);
      const required = Object.keys(sample).filter((k) => k !== 'version');
      const broken: unknown[] = [
        ...required.map((k) => Object.fromEntries(Object.entries(sample).filter(([f]) => f !== k))),
        { ...sample, type: type === 'used' ? 'created' : 'used' },
        { ...sample, schema_version: KEY_EVENT_VERSIONS[type] + 1 },
        { ...sample, version: 0 },
        { ...sample, actor: { type: 'robot', id: 'x' } },
      ];
      for (const b of broken) {
        expect({ event: b, schema: validate(b) }).toEqual({ event: b, schema: false });
        expect({ event: b, zod: KeyEvent.safeParse(b).success && (b as { schema_version: number }).schema_version === KEY_EVENT_VERSIONS[type] }).toEqual({ event: b, zod: false });
      }
    });

    it('keep the frozen used v1 schema, which accepts what v1 gateways sent; parseKeyEvent upcasts it to v2', () => {
      const validate = validatorOf('used', 1);
      expect(validate(usedV1) ? null : validate.errors).toBeNull();
      expect(contracts.parseKeyEvent(usedV1)).toEqual({
        ...usedV1,
        schema_version: 2,
        data: { count: 3, rate_limited: 0, first_at: base.occurred_at, last_at: base.occurred_at, scopes_used: null, secret: 'current' },
      });
      expect(validatorOf('used')(usedV1)).toBe(false);
    });

    it('let a consumer ignore a field added later', () => {
      expect(validatorOf('revoked')({ ...samples[5], data: { reason: null, added_later: 1 }, added_later: true })).toBe(true);
    });
  });

  it('has a JSON Schema per member and tenant event type that accepts what identity publishes and refuses what the contract refuses', () => {
    const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
    addFormats(ajv);
    const at = base.occurred_at;
    const memberSamples = [
      memberEventEnvelope({ id: base.id, type: 'created', occurred_at: at, tenant_id: base.tenant_id, member_id: 'usr_1', actor: { type: 'member', id: 'usr_0' }, data: { name: 'Ada', email: 'ada@example.com', role: 'developer' } }),
      memberEventEnvelope({ id: base.id, type: 'updated', occurred_at: at, tenant_id: base.tenant_id, member_id: 'usr_1', actor: { type: 'member', id: 'usr_1' }, data: { password_changed: true, sessions_ended: 2 } }),
      memberEventEnvelope({ id: base.id, type: 'deleted', occurred_at: at, tenant_id: base.tenant_id, member_id: 'usr_1', actor: { type: 'operator', id: 'operator' }, data: { email: 'ada@example.com', role: 'viewer' } }),
      memberEventEnvelope({ id: base.id, type: 'signed_in', occurred_at: at, tenant_id: base.tenant_id, member_id: 'usr_1', actor: { type: 'member', id: 'usr_1' }, data: { client_address: '203.0.113.7' } }),
      memberEventEnvelope({ id: base.id, type: 'sign_in_failed', occurred_at: at, tenant_id: base.tenant_id, member_id: 'usr_1', actor: { type: 'system', id: 'identity' }, data: { client_address: '203.0.113.7' } }),
    ];
    const tenantSamples = [tenantEventEnvelope({ id: base.id, type: 'updated', occurred_at: at, tenant_id: base.tenant_id, actor: { type: 'operator', id: 'operator' }, data: { name: 'Acme' } })];
    expect(memberSamples.map((m) => m.type)).toEqual(MEMBER_EVENT_TYPES);
    expect(tenantSamples.map((t) => t.type)).toEqual(TENANT_EVENT_TYPES);
    const cases = [
      ...memberSamples.map((m) => ({ sample: m as Record<string, unknown>, file: schemaFile(memberEventSubject(m.type), MEMBER_EVENT_VERSIONS[m.type]) })),
      ...tenantSamples.map((t) => ({ sample: t as Record<string, unknown>, file: schemaFile(tenantEventSubject(t.type), TENANT_EVENT_VERSIONS[t.type]) })),
    ];
    for (const { sample, file } of cases) {
      const validate = ajv.compile(JSON.parse(read(`${EVENTS_DIR}/${file}`)) as object);
      expect({ file, errors: validate(sample) ? null : validate.errors }).toEqual({ file, errors: null });
      for (const k of Object.keys(sample)) expect({ file, without: k, valid: validate(Object.fromEntries(Object.entries(sample).filter(([f]) => f !== k))) }).toEqual({ file, without: k, valid: false });
      expect(validate({ ...sample, schema_version: 2 })).toBe(false);
    }
  });

  it('names the streams: lifecycle subjects in KEYWAY for good, used in KEYWAY_USAGE for 35 days, the DLQ', () => {
    const md = read(EVENTS_MD);
    expect(md).toContain(`| \`KEYWAY\` | key lifecycle events: each key's event-sourced history | ${STREAMS.keys.subjects.map((x) => `\`${x}\``).join(', ')} | for good |`);
    expect(md).toContain('| `KEYWAY_USAGE` | `used` events, aggregated by the gateways | `keyway.keys.used` | 35 days |');
    expect(md).toContain('| `KEYWAY_DLQ` |');
    for (const type of KEY_EVENT_TYPES) {
      const stream = type === 'used' ? 'KEYWAY_USAGE' : 'KEYWAY';
      expect(md).toContain(`| \`${eventSubject(type)}\` | \`${type}\` | \`${stream}\` |`);
      expect(JSON.parse(read(`${EVENTS_DIR}/${schemaFile(eventSubject(type), KEY_EVENT_VERSIONS[type])}`)).description).toContain(`(stream ${stream})`);
    }
  });

  it('has an AsyncAPI 3 channel per subject of the table, each message pointing at a schema that exists', () => {
    const doc = JSON.parse(read(ASYNCAPI_FILE)) as {
      asyncapi: string;
      channels: Record<string, { address: string; messages: Record<string, { payload: { schema: { $ref: string } } }> }>;
      operations: Record<string, { action: string; channel: { $ref: string }; messages: Array<{ $ref: string }> }>;
    };
    expect(doc.asyncapi).toBe('3.0.0');
    const dlq = deadLetterSubject('{stream}', '{durable}');
    const others = [...MEMBER_EVENT_TYPES.map(memberEventSubject), ...TENANT_EVENT_TYPES.map(tenantEventSubject)];
    expect(Object.values(doc.channels).map((c) => c.address).sort()).toEqual([...KEY_EVENT_TYPES.map(eventSubject), ...others, dlq].sort());
    const dead = Object.values(doc.channels).find((c) => c.address === dlq) as unknown as { messages: { deadLetter: { headers: { properties: object } } } };
    expect(Object.keys(dead.messages.deadLetter.headers.properties).sort()).toEqual(Object.values(DEAD_LETTER_HEADERS).sort());
    for (const channel of Object.values(doc.channels)) {
      if (channel.address === dlq) continue;
      if (others.includes(channel.address)) {
        const refs = Object.values(channel.messages).map((m) => m.payload.schema.$ref);
        expect(refs).toEqual([`./${schemaFile(channel.address, 1)}`]);
        for (const ref of refs) expect(existsSync(join(ROOT, EVENTS_DIR, ref))).toBe(true);
        continue;
      }
      const type = channel.address.replace('keyway.keys.', '') as KeyEventType;
      const refs = Object.values(channel.messages).map((m) => m.payload.schema.$ref);
      expect(refs).toEqual(Array.from({ length: KEY_EVENT_VERSIONS[type] }, (_, i) => `./${schemaFile(channel.address, i + 1)}`));
      for (const ref of refs) expect(existsSync(join(ROOT, EVENTS_DIR, ref))).toBe(true);
    }
    const resolve = (ref: string): unknown =>
      ref.replace(/^#\//, '').split('/').reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], doc);
    for (const op of Object.values(doc.operations)) {
      expect(op.action).toBe('receive');
      expect(resolve(op.channel.$ref)).toBeDefined();
      for (const m of op.messages) expect(resolve(m.$ref)).toBeDefined();
    }
  });
});
