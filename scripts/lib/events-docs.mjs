/**
 * The published key-event contract (issue 11), generated from packages/contracts so it cannot
 * drift: one JSON Schema per event type and schema version, an AsyncAPI 3 document built from the
 * subjects table, and the generated sections of docs/events.md. Pure: the caller hands in the
 * contracts module and zod (the CLI its build, the test its sources), and writes the files.
 *
 * Older versions: the contracts hold only each type's current payload. When a type moves to v2,
 * its checked-in v1 schema stays as it was (stored events are never rewritten, and a replay still
 * delivers v1 messages); the test requires a file for every version from 1 to the current one.
 *
 * Member and tenant events (`keyway.members.<type>`, `keyway.tenants.<type>`, also in KEYWAY) get
 * the same: a JSON Schema per type and version, an AsyncAPI channel, a generated section.
 *
 * Streams: each subject's stream comes from the contracts' STREAMS table (lifecycle events in
 * KEYWAY, kept for good; `used` in KEYWAY_USAGE, kept 35 days; dead letters in KEYWAY_DLQ).
 */

export const EVENTS_DIR = 'docs/events';
export const EVENTS_MD = 'docs/events.md';
const ASYNCAPI_FILE = `${EVENTS_DIR}/asyncapi.json`;

/** The stream of the contracts' STREAMS table that captures `subject` (one, or the table is wrong). */
function streamOf(contracts, subject) {
  const found = Object.values(contracts.STREAMS).filter((s) => s.subjects.includes(subject));
  if (found.length !== 1) throw new Error(`${subject} must be captured by exactly one stream of STREAMS, not ${found.length}`);
  return found[0];
}
const retention = (stream) => (stream.maxAgeDays ? `${stream.maxAgeDays} days` : 'for good');

/**
 * Plain words for every field. A field without a note, or a note without a field, stops the
 * generator: a contract change has to say what it means to the teams that read it.
 */
const ENVELOPE_NOTES = {
  id: 'Unique event id; also the JetStream message id (`Nats-Msg-Id`), so a republished event is dropped by the stream within its duplicate window. Deduplicate on it.',
  type: 'The event type; the subject is `keyway.keys.<type>`.',
  schema_version: 'Version of `data`\'s shape for this type. Upcast older versions (`parseKeyEvent`); stored events are never rewritten.',
  occurred_at: 'When it happened (ISO 8601, UTC).',
  tenant_id: 'The tenant that owns the key.',
  key_id: 'The key (`key_…`); events are ordered per key.',
  prefix: 'The key\'s public prefix (its look-up id, never the secret).',
  version: 'Position of the event in its key\'s history (1, 2, 3, …, no gaps). Always set on lifecycle events (identity stamps every one it publishes); absent on `used`, which is not part of the history. Order a key\'s events by it; ignore one you already applied.',
  actor: 'Who did it: `type` is `key`, `member` (a signed-in tenant member), `operator`, `system`, or `user` (events written before members existed), and `id` names them.',
  data: 'The type\'s payload, below.',
};
const DATA_NOTES = {
  created: {
    name: 'Display name.',
    scopes: 'Scopes granted.',
    environment: '`live` or `test`.',
    expires_at: 'When the key expires, or null for never.',
    rate_limit: 'Per-key limits that override the tenant\'s, or null.',
    metadata: 'The customer\'s own key-value pairs.',
    root: 'True for a tenant\'s root key (made by the operator). Absent in events written before the field existed: read as false.',
  },
  updated: {
    name: 'New name, when changed.',
    scopes: 'The new full scope list, when changed.',
    rate_limit: 'New override (null: back to the tenant\'s limits), when changed.',
    metadata: 'The new full metadata, when changed.',
  },
  enabled: {},
  disabled: {},
  rotated: {
    previous_prefix: 'Prefix of the secret that was replaced.',
    previous_valid_until: 'Until when the previous secret keeps working; null when it stopped at once.',
  },
  rotation_completed: {
    ended_prefixes: 'Prefixes of the older secrets that were still inside a grace and stopped working at `occurred_at`. Every older secret of the key has stopped by then; `prefix` is the current one.',
  },
  revoked: { reason: 'Why, as given by the caller, or null.' },
  expired: { expires_at: 'The expiry that was reached.' },
  used: {
    count: 'Calls in the interval (at least 1), the rate-limited ones included.',
    rate_limited: 'Of `count`, the calls refused with 429.',
    first_at: 'First call of the interval.',
    last_at: 'Last call of the interval.',
    scopes_used: 'The scopes the admitted calls needed. null: unknown (an upcast v1 event), which never means "unused".',
    secret: '`current`, or `previous`: an older secret still inside a rotation grace. One event per (key, secret) per interval from each gateway.',
  },
};

/**
 * Member and tenant events (also on `KEYWAY`): their own envelopes (no key: a member's names the
 * member; a tenant's only the tenant) and payloads, described like the keys'.
 */
const FAMILY_ENVELOPE_NOTES = {
  id: ENVELOPE_NOTES.id,
  schema_version: 'Version of `data`\'s shape for this type (`parseMemberEvent`, `parseTenantEvent`); stored events are never rewritten.',
  occurred_at: ENVELOPE_NOTES.occurred_at,
  tenant_id: 'The tenant.',
  member_id: 'The member (`usr_…`); member events only.',
  actor: ENVELOPE_NOTES.actor,
  type: 'The event type; the subject is `keyway.members.<type>` or `keyway.tenants.<type>`.',
  data: ENVELOPE_NOTES.data,
};
const MEMBER_DATA_NOTES = {
  created: { name: 'Display name.', email: 'Sign-in email.', role: '`admin`, `developer` or `viewer`.' },
  updated: {
    name: 'New name, when changed.',
    email: 'New email, when changed.',
    role: 'New role, when changed.',
    password_changed: '`true` when the password changed (never the password).',
    sessions_ended: 'Sessions the change ended (a password change ends the member\'s other sessions).',
  },
  deleted: { email: 'The removed member\'s email.', role: 'The role they had.' },
  signed_in: { client_address: 'The client address the sign-in came from.' },
  sign_in_failed: { client_address: 'The client address of the attempt (the email matched, the password did not).' },
};
const TENANT_DATA_NOTES = {
  updated: {
    name: 'New tenant name, when changed.',
    rate_limit_ceiling: 'The new ceiling of every key\'s limits, as the operator set it (null: back to the defaults), when changed.',
  },
};

/** Event families besides the keys': each with its union, types, versions and subjects. */
function families(contracts) {
  return [
    { family: 'member', union: contracts.MemberEvent, types: [...contracts.MEMBER_EVENT_TYPES], versions: contracts.MEMBER_EVENT_VERSIONS, subject: contracts.memberEventSubject, notes: MEMBER_DATA_NOTES },
    { family: 'tenant', union: contracts.TenantEvent, types: [...contracts.TENANT_EVENT_TYPES], versions: contracts.TENANT_EVENT_VERSIONS, subject: contracts.tenantEventSubject, notes: TENANT_DATA_NOTES },
  ];
}

/** A JSON Schema for one member or tenant event type at its current version. */
function familySchemaOf(contracts, z, f, type) {
  const version = f.versions[type];
  const subject = f.subject(type);
  const stream = streamOf(contracts, subject).name;
  const option = f.union.options.find((o) => o.shape.type.value === type);
  if (!option) throw new Error(`the ${f.family} event union has no member for type ${type}`);
  const schema = z.toJSONSchema(option.extend({ schema_version: z.literal(version) }), { io: 'input' });
  const { $schema, ...rest } = schema;
  return {
    $schema,
    title: `${subject} v${version}`,
    description: `A \`${type}\` ${f.family} event, schema_version ${version}, as published on \`${subject}\` (stream ${stream}). Generated from packages/contracts by \`npm run docs:events\`; do not edit.`,
    ...rest,
  };
}

/** The generated section on member and tenant events: subjects, envelopes, payloads. */
function familySections(contracts, z, fams, schemas) {
  const out = ['| Subject | Type | Stream | Current `schema_version` | JSON Schema |', '| --- | --- | --- | --- | --- |'];
  for (const f of fams) {
    for (const type of f.types) {
      const subject = f.subject(type);
      out.push(`| \`${subject}\` | \`${type}\` | \`${streamOf(contracts, subject).name}\` | ${f.versions[type]} | [v${f.versions[type]}](events/${schemaFile(subject, f.versions[type])}) |`);
    }
  }
  for (const f of fams) {
    const first = z.toJSONSchema(f.union.options[0], { io: 'input' });
    const props = { ...first.properties, type: { enum: f.types }, data: { type: 'object' } };
    // member_id is the member family's alone.
    const envNotes = Object.fromEntries(Object.entries(FAMILY_ENVELOPE_NOTES).filter(([k]) => k !== 'member_id' || f.family === 'member'));
    checkNotes(`the ${f.family} envelope`, props, envNotes, 'The fields');
    out.push('', `### The ${f.family} envelope`, '', fieldTable(props, first.required, envNotes));
    for (const type of f.types) {
      const data = schemas.get(`${f.family}.${type}`).properties.data;
      const notes = f.notes[type] ?? {};
      checkNotes(`${f.family} ${type}`, data.properties ?? {}, notes, 'The data fields');
      const subject = f.subject(type);
      const file = schemaFile(subject, f.versions[type]);
      const body = Object.keys(data.properties ?? {}).length === 0 ? '`data` is an empty object `{}`.' : fieldTable(data.properties, data.required, notes);
      out.push('', `#### \`${type}\` (\`${subject}\`, schema_version ${f.versions[type]})`, '', body, '', `Schema: [${file}](events/${file})`);
    }
  }
  return out.join('\n');
}

/** The dead-letter headers (`DEAD_LETTER_HEADERS` of @keyway/messaging), by their key there. */
const DEAD_LETTER_NOTES = {
  reason: '`invalid` (does not parse: not JSON, unknown type, wrong shape), `unreadable_after_retries` (a schema_version newer than the consumer, still after the bounded redeliveries), `refused` (the handler called it permanent) or `failed_after_retries`.',
  error: 'The error, on one line, at most 512 characters.',
  subject: 'The subject it was published on.',
  stream: 'The stream it came from.',
  durable: 'The durable consumer that gave up on it.',
  streamSeq: 'Its sequence number in that stream: replay it from there after a fix.',
  deliveries: 'How many times it was delivered.',
};

const json = (value) => `${JSON.stringify(value, null, 2)}\n`;
const schemaFile = (subject, version) => `${subject}.v${version}.json`;

/** The envelope of one type, as zod sees it in `KeyEvent`, with its schema version pinned. */
function envelopeSchema(contracts, z, type, version) {
  const option = contracts.KeyEvent.options.find((o) => o.shape.type.value === type);
  if (!option) throw new Error(`KeyEvent has no member for type ${type}`);
  return option.extend({ schema_version: z.literal(version) });
}

/** A JSON Schema for one event type at its current version: the full envelope with that type's data. */
function jsonSchemaOf(contracts, z, type) {
  const version = contracts.KEY_EVENT_VERSIONS[type];
  const subject = contracts.eventSubject(type);
  const stream = streamOf(contracts, subject).name;
  // `input`: what a reader accepts. Objects stay open (zod strips unknown keys), so an optional
  // field added later does not break a consumer that validates with the schema.
  const schema = z.toJSONSchema(envelopeSchema(contracts, z, type, version), { io: 'input' });
  const { $schema, ...rest } = schema;
  return {
    $schema,
    title: `${subject} v${version}`,
    description: `A \`${type}\` key event, schema_version ${version}, as published on \`${subject}\` (stream ${stream}). Generated from packages/contracts by \`npm run docs:events\`; do not edit.`,
    ...rest,
  };
}

function checkNotes(type, properties, notes, where) {
  const fields = Object.keys(properties);
  const missing = fields.filter((f) => !(f in notes));
  const stale = Object.keys(notes).filter((f) => !fields.includes(f));
  if (missing.length > 0 || stale.length > 0) {
    throw new Error(
      `${where} of ${type}: ${missing.length ? `no note for ${missing.join(', ')}` : ''}${missing.length && stale.length ? '; ' : ''}${stale.length ? `a note for a field that is gone: ${stale.join(', ')}` : ''} (scripts/lib/events-docs.mjs)`,
    );
  }
}

const code = (v) => `\`${typeof v === 'string' ? JSON.stringify(v) : String(v)}\``;

/** A JSON Schema in a few words, for the field tables. */
function describeType(s) {
  if (s.const !== undefined) return code(s.const);
  if (s.enum) return s.enum.length <= 4 ? s.enum.map(code).join(' \\| ') : `one of ${s.enum.map(code).join(', ')}`;
  if (s.anyOf) return s.anyOf.map(describeType).join(' or ');
  if (Array.isArray(s.type)) return s.type.map((t) => describeType({ ...s, type: t })).join(' or ');
  switch (s.type) {
    case 'array':
      return `array of ${describeType(s.items ?? {})}`;
    case 'object':
      if (s.properties && Object.keys(s.properties).length > 0) {
        const req = new Set(s.required ?? []);
        return `object {${Object.keys(s.properties).map((k) => (req.has(k) ? k : `${k}?`)).join(', ')}}`;
      }
      if (s.additionalProperties && typeof s.additionalProperties === 'object') return `map of string to ${describeType(s.additionalProperties)}`;
      return 'object';
    case 'integer':
      // zod's int() states the safe-integer range; only a real lower bound is worth a word.
      return s.minimum > Number.MIN_SAFE_INTEGER ? `integer ≥ ${s.minimum}` : 'integer';
    case 'string':
      return s.maxLength !== undefined ? `string (≤ ${s.maxLength})` : 'string';
    case undefined:
      return 'any';
    default:
      return s.type;
  }
}

function fieldTable(properties, required, notes) {
  const req = new Set(required ?? []);
  const rows = Object.entries(properties).map(
    ([name, s]) => `| \`${name}\` | ${describeType(s)} | ${req.has(name) ? 'yes' : 'no'} | ${notes[name]} |`,
  );
  return ['| Field | Type | Required | Meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

/**
 * The AsyncAPI 3 document: a channel per subject of the table, a message per schema version, and
 * the dead-letter channel (its message is the original one, byte for byte, with headers that say
 * why).
 */
function asyncApi(contracts, types, deadLetterHeaders, fams) {
  const channels = {};
  const operations = {};
  const camel = (text) => text.split(/[_.]/).map((w) => w[0].toUpperCase() + w.slice(1)).join('');
  for (const type of types) {
    const subject = contracts.eventSubject(type);
    const stream = streamOf(contracts, subject);
    const messages = {};
    for (let v = 1; v <= contracts.KEY_EVENT_VERSIONS[type]; v++) {
      messages[`${type}V${v}`] = {
        name: `${subject}.v${v}`,
        title: `${type} (schema_version ${v})`,
        contentType: 'application/json',
        headers: {
          type: 'object',
          properties: { 'Nats-Msg-Id': { type: 'string', description: 'The event id: JetStream drops a republished event within the duplicate window.' } },
        },
        payload: { schemaFormat: 'application/schema+json;version=draft-2020-12', schema: { $ref: `./${schemaFile(subject, v)}` } },
      };
    }
    channels[type] = {
      address: subject,
      title: subject,
      description: `\`${type}\` key events, captured by the JetStream stream ${stream.name} (kept ${retention(stream)}).`,
      messages,
    };
    operations[`receive${type.split('_').map((w) => w[0].toUpperCase() + w.slice(1)).join('')}`] = {
      action: 'receive',
      summary: `A consumer reads \`${type}\` events through a durable JetStream consumer on ${stream.name}.`,
      channel: { $ref: `#/channels/${type}` },
      messages: Object.keys(messages).map((m) => ({ $ref: `#/channels/${type}/messages/${m}` })),
    };
  }
  for (const f of fams) {
    for (const type of f.types) {
      const subject = f.subject(type);
      const stream = streamOf(contracts, subject);
      const id = `${f.family}_${type}`;
      const messages = {
        [`${camel(id)}V${f.versions[type]}`]: {
          name: `${subject}.v${f.versions[type]}`,
          title: `${f.family} ${type} (schema_version ${f.versions[type]})`,
          contentType: 'application/json',
          headers: {
            type: 'object',
            properties: { 'Nats-Msg-Id': { type: 'string', description: 'The event id: JetStream drops a republished event within the duplicate window.' } },
          },
          payload: { schemaFormat: 'application/schema+json;version=draft-2020-12', schema: { $ref: `./${schemaFile(subject, f.versions[type])}` } },
        },
      };
      channels[id] = {
        address: subject,
        title: subject,
        description: `\`${type}\` ${f.family} events, captured by the JetStream stream ${stream.name} (kept ${retention(stream)}).`,
        messages,
      };
      operations[`receive${camel(id)}`] = {
        action: 'receive',
        summary: `A consumer reads ${f.family} \`${type}\` events through a durable JetStream consumer on ${stream.name}.`,
        channel: { $ref: `#/channels/${id}` },
        messages: Object.keys(messages).map((m) => ({ $ref: `#/channels/${id}/messages/${m}` })),
      };
    }
  }
  const dlq = contracts.STREAMS.dlq;
  channels.deadLetters = {
    address: contracts.deadLetterSubject('{stream}', '{durable}'),
    title: 'Dead letters',
    description: `What a platform consumer could never process (it does not parse, has an unknown type or a schema_version newer than the consumer, or kept failing after bounded redeliveries with backoff), captured by the JetStream stream ${dlq.name} (kept ${retention(dlq)}). The payload is the original message, byte for byte.`,
    parameters: {
      stream: { description: 'The stream the message came from (e.g. KEYWAY_USAGE).' },
      durable: { description: 'The durable consumer that gave up on it (e.g. identity-last-used).' },
    },
    messages: {
      deadLetter: {
        name: 'dead-letter',
        title: 'A message no consumer could process',
        contentType: 'application/octet-stream',
        headers: {
          type: 'object',
          properties: Object.fromEntries(Object.entries(deadLetterHeaders).map(([k, name]) => [name, { type: 'string', description: DEAD_LETTER_NOTES[k] }])),
        },
        payload: { description: 'The original message data, unchanged.' },
      },
    },
  };
  operations.receiveDeadLetters = {
    action: 'receive',
    summary: `An operator inspects, and replays after a fix, what ${dlq.name} holds.`,
    channel: { $ref: '#/channels/deadLetters' },
    messages: [{ $ref: '#/channels/deadLetters/messages/deadLetter' }],
  };
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'Keyway key events',
      // The schema versions it describes: any change of one is a new document version.
      version: [...types.map((t) => `${t}.v${contracts.KEY_EVENT_VERSIONS[t]}`), ...fams.flatMap((f) => f.types.map((t) => `${f.family}.${t}.v${f.versions[t]}`))].join(' '),
      description:
        `Lifecycle events of API keys, and tenant members' and tenants' events, on NATS JetStream stream ${contracts.STREAMS.keys.name} (kept ${retention(contracts.STREAMS.keys)}), usage events on ${contracts.STREAMS.usage.name} (kept ${retention(contracts.STREAMS.usage)}), dead letters on ${contracts.STREAMS.dlq.name}. Delivery is at least once, deduplicated by \`id\`; stored in order per key, possibly out of order after a redelivery, so order a key's events by \`version\`. See docs/events.md. Generated from packages/contracts by \`npm run docs:events\`; do not edit.`,
    },
    defaultContentType: 'application/json',
    channels,
    operations,
  };
}

/** The generated sections of docs/events.md, by marker name. */
function sections(contracts, z, types, schemas) {
  const { keys, usage, dlq } = contracts.STREAMS;
  const subjects = [
    '| Stream | Holds | Subjects | Kept |',
    '| --- | --- | --- | --- |',
    `| \`${keys.name}\` | key lifecycle events: each key's event-sourced history | ${keys.subjects.map((x) => `\`${x}\``).join(', ')} | ${retention(keys)} |`,
    `| \`${usage.name}\` | \`used\` events, aggregated by the gateways | ${usage.subjects.map((x) => `\`${x}\``).join(', ')} | ${retention(usage)} |`,
    `| \`${dlq.name}\` | what a platform consumer could never process, with the reason | \`${contracts.deadLetterSubject('<stream>', '<durable>')}\` | ${retention(dlq)} |`,
    '',
    'Subjects, one per event type:',
    '',
    '| Subject | Type | Stream | Current `schema_version` | JSON Schemas |',
    '| --- | --- | --- | --- | --- |',
    ...types.map((type) => {
      const subject = contracts.eventSubject(type);
      const current = contracts.KEY_EVENT_VERSIONS[type];
      const files = Array.from({ length: current }, (_, i) => `[v${i + 1}](events/${schemaFile(subject, i + 1)})`).join(', ');
      return `| \`${subject}\` | \`${type}\` | \`${streamOf(contracts, subject).name}\` | ${current} | ${files} |`;
    }),
  ].join('\n');

  // The envelope as `KeyEvent` declares it (any version), its type and data said for all types.
  const first = z.toJSONSchema(contracts.KeyEvent.options[0], { io: 'input' });
  const envelopeProps = { ...first.properties, type: { enum: types }, data: { type: 'object' } };
  checkNotes('the envelope', envelopeProps, ENVELOPE_NOTES, 'The fields');
  const envelope = fieldTable(envelopeProps, first.required, ENVELOPE_NOTES);

  const perType = types
    .map((type) => {
      const s = schemas.get(type);
      const data = s.properties.data;
      const notes = DATA_NOTES[type] ?? {};
      checkNotes(type, data.properties ?? {}, notes, 'The data fields');
      const subject = contracts.eventSubject(type);
      const version = contracts.KEY_EVENT_VERSIONS[type];
      const head = `### \`${type}\` (\`${subject}\`, schema_version ${version})`;
      const body = Object.keys(data.properties ?? {}).length === 0 ? '`data` is an empty object `{}`.' : fieldTable(data.properties, data.required, notes);
      return `${head}\n\n${body}\n\nSchema: [${schemaFile(subject, version)}](events/${schemaFile(subject, version)})`;
    })
    .join('\n\n');
  return { subjects, envelope, types: perType };
}

const marker = (name, end) => `<!-- ${end ? 'END' : 'BEGIN'} GENERATED ${name} (npm run docs:events) -->`;

/** Replaces each marked section of `markdown` with its generated text; every marker must be there once. */
function splice(markdown, generated) {
  let out = markdown;
  for (const [name, text] of Object.entries(generated)) {
    const begin = marker(name, false);
    const end = marker(name, true);
    const from = out.indexOf(begin);
    const to = out.indexOf(end);
    if (from < 0 || to < from || out.indexOf(begin, from + 1) >= 0) {
      throw new Error(`${EVENTS_MD} must hold the markers "${begin}" and "${end}" once, in that order`);
    }
    out = `${out.slice(0, from + begin.length)}\n${text}\n${out.slice(to)}`;
  }
  return out;
}

/**
 * Everything generated, as repository-relative path → content. `markdown` is docs/events.md as it
 * is now (its prose is hand-written; only the marked sections are replaced); `deadLetterHeaders`
 * is @keyway/messaging's DEAD_LETTER_HEADERS.
 */
export function eventDocs({ contracts, z, markdown, deadLetterHeaders }) {
  const missingNotes = Object.keys(deadLetterHeaders).filter((k) => !(k in DEAD_LETTER_NOTES));
  if (missingNotes.length > 0) throw new Error(`no notes for dead-letter headers ${missingNotes.join(', ')} (scripts/lib/events-docs.mjs)`);
  const types = [...contracts.KEY_EVENT_TYPES];
  const missing = types.filter((t) => !(t in DATA_NOTES));
  if (missing.length > 0) throw new Error(`no notes for event types ${missing.join(', ')} (scripts/lib/events-docs.mjs)`);
  const schemas = new Map(types.map((type) => [type, jsonSchemaOf(contracts, z, type)]));
  const files = new Map();
  for (const [type, schema] of schemas) {
    files.set(`${EVENTS_DIR}/${schemaFile(contracts.eventSubject(type), contracts.KEY_EVENT_VERSIONS[type])}`, json(schema));
  }
  const fams = families(contracts);
  const familySchemas = new Map();
  for (const f of fams) {
    for (const type of f.types) {
      const schema = familySchemaOf(contracts, z, f, type);
      familySchemas.set(`${f.family}.${type}`, schema);
      files.set(`${EVENTS_DIR}/${schemaFile(f.subject(type), f.versions[type])}`, json(schema));
    }
  }
  files.set(ASYNCAPI_FILE, json(asyncApi(contracts, types, deadLetterHeaders, fams)));
  files.set(EVENTS_MD, splice(markdown, { ...sections(contracts, z, types, schemas), 'member-and-tenant-events': familySections(contracts, z, fams, familySchemas) }));
  return files;
}
