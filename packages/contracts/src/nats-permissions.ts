import {
  deadLetterSubject,
  GATEWAY_HEARTBEAT,
  GATEWAY_INVALIDATE,
  KEY_LIFECYCLE_SUBJECTS,
  MEMBER_EVENT_SUBJECTS,
  Rpc,
  SERVICE_CALLS,
  STREAMS,
  USAGE_SUBJECT,
} from './subjects';

/**
 * Who may do what on the bus, generated from the subjects table (DESIGN, Operations): each service
 * connects as its own NATS user, and `scripts/nats-auth.mjs` renders these lists into
 * `infra/nats/auth.conf` (a test keeps the checked-in file equal to this output), so a subject
 * added to the table cannot be forgotten in the permissions.
 *
 * Each user's inbox is its own (`_INBOX.<user>.>`, the client's `inboxPrefix`): with a shared
 * `_INBOX.>` any user could subscribe to the gateway's replies and read key records.
 */
export const NATS_USERS = ['gateway', 'identity', 'contacts', 'journeys', 'audit-log', 'reader'] as const;
export type NatsUser = (typeof NATS_USERS)[number];
/** The services, by the token after `keyway.rpc.` in their request subjects. */
export const RPC_SERVICES = { identity: 'identity', contacts: 'contacts', journeys: 'journeys', audit: 'audit-log' } as const;
type Service = Exclude<NatsUser, 'gateway' | 'reader'>;

/** Domain event subjects (in STREAMS.domain) and the one service that publishes each. */
export const DOMAIN_PUBLISHERS: Readonly<Record<(typeof STREAMS.domain.subjects)[number], Service>> = {
  'keyway.contacts.>': 'contacts',
  'keyway.accounts.>': 'contacts',
  'keyway.journeys.>': 'journeys',
};

/** Which streams each user reads with a durable (or ordered) consumer. */
const READS: Readonly<Record<NatsUser, ReadonlyArray<keyof typeof STREAMS>>> = {
  gateway: [],
  identity: ['usage'],
  contacts: [],
  journeys: ['domain'],
  'audit-log': ['keys', 'usage'],
  reader: ['keys', 'domain'],
};

/**
 * The streams each user's outbox relays publish into. A relay reads its stream back after a
 * reconnect, to find what the broker lost (packages/outbox): it finds the stream by subject
 * (`STREAM.NAMES`) and reads single messages (`STREAM.MSG.GET`).
 */
const RELAYS: Readonly<Record<NatsUser, ReadonlyArray<keyof typeof STREAMS>>> = {
  gateway: [],
  identity: ['keys'],
  contacts: ['domain'],
  journeys: ['domain'],
  'audit-log': [],
  reader: [],
};

export interface NatsUserPermissions {
  user: NatsUser;
  /** The environment variable nats-server reads the password from (never checked in). */
  passwordEnv: string;
  publish: string[];
  subscribe: string[];
  /** May answer requests it received (publish to their reply subjects, once each). */
  allowResponses: boolean;
}

/** Stream names are configurable (KEYWAY_STREAM, …); the defaults are the table's. */
export type StreamNames = Partial<Record<keyof typeof STREAMS, string>>;

export const natsInboxPrefix = (user: string): string => `_INBOX.${user}`;
export const natsPasswordEnv = (user: string): string => `NATS_PASSWORD_${user.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;

const api = (rest: string): string => `$JS.API.${rest}`;

/**
 * What the owner of a stream needs: create/update/inspect it, read single messages back, and its
 * consumers (inspect their lag, read the stream back, remove a retired durable).
 */
function streamOwner(stream: string): string[] {
  return [
    api(`STREAM.CREATE.${stream}`),
    api(`STREAM.UPDATE.${stream}`),
    ...streamReader(stream, true),
    api(`STREAM.MSG.GET.${stream}`),
    api(`DIRECT.GET.${stream}`),
    api(`DIRECT.GET.${stream}.>`),
  ];
}

/**
 * What a consumer of a stream needs: wait for it (info), create or update its durable (both the
 * 2.9+ `CONSUMER.CREATE.<stream>.<name>[.<filter>]` and the older `DURABLE.CREATE` form), inspect
 * it, pull (`MSG.NEXT`) and settle messages (`$JS.ACK`: ack, nak, term, in progress).
 * `deleteConsumers`: services remove their retired or temporary consumers (an ordered consumer,
 * the audit rebuild's); the read-only user never can, so it cannot remove anyone else's durable.
 */
function streamReader(stream: string, deleteConsumers: boolean): string[] {
  return [
    api(`STREAM.INFO.${stream}`),
    api(`CONSUMER.CREATE.${stream}`),
    api(`CONSUMER.CREATE.${stream}.>`),
    api(`CONSUMER.DURABLE.CREATE.${stream}.*`),
    api(`CONSUMER.INFO.${stream}.*`),
    api(`CONSUMER.MSG.NEXT.${stream}.*`),
    ...(deleteConsumers ? [api(`CONSUMER.DELETE.${stream}.*`)] : []),
    `$JS.ACK.${stream}.>`,
  ];
}

const unique = (list: string[]): string[] => [...new Set(list)];

export function natsPermissions(names: StreamNames = {}): NatsUserPermissions[] {
  const streamName = (k: keyof typeof STREAMS): string => names[k] ?? STREAMS[k].name;
  const serviceOnly = new Set<string>(SERVICE_CALLS.map((c) => c.subject));
  const rpcNamespace = (service: Service): string => {
    const token = Object.entries(RPC_SERVICES).find(([, s]) => s === service)![0];
    return `keyway.rpc.${token}.>`;
  };
  const owned = (user: NatsUser): string[] =>
    (Object.keys(STREAMS) as Array<keyof typeof STREAMS>).filter((k) => STREAMS[k].owner === user).flatMap((k) => streamOwner(streamName(k)));
  const reads = (user: NatsUser): string[] =>
    READS[user].flatMap((k) => [
      ...streamReader(streamName(k), user !== 'reader'),
      // A consumer parks what it can never process in KEYWAY_DLQ (contracts' deadLetterSubject).
      ...(user === 'reader' ? [] : [deadLetterSubject(streamName(k), '>')]),
    ]);
  const jsInfo = (user: NatsUser): string[] => (user === 'gateway' ? [] : [api('INFO')]);
  const relays = (user: NatsUser): string[] =>
    RELAYS[user].length === 0
      ? []
      : [api('STREAM.NAMES'), ...RELAYS[user].flatMap((k) => [api(`STREAM.INFO.${streamName(k)}`), api(`STREAM.MSG.GET.${streamName(k)}`)])];
  // A service serves its whole namespace (the spec checks that every Rpc subject is in one).
  const served = (service: Service): string[] => [rpcNamespace(service)];
  const calls = (service: Service): string[] => SERVICE_CALLS.filter((c) => c.from === service).map((c) => c.subject);
  const domainPublishes = (service: Service): string[] =>
    Object.entries(DOMAIN_PUBLISHERS).filter(([, s]) => s === service).map(([subject]) => subject);

  const service = (user: Service, publish: string[], subscribe: string[]): NatsUserPermissions => ({
    user,
    passwordEnv: natsPasswordEnv(user),
    publish: unique([...publish, ...domainPublishes(user), ...calls(user), ...owned(user), ...reads(user), ...relays(user), ...jsInfo(user)]),
    subscribe: unique([...served(user), ...subscribe, `${natsInboxPrefix(user)}.>`]),
    allowResponses: true,
  });

  return [
    {
      user: 'gateway',
      passwordEnv: natsPasswordEnv('gateway'),
      publish: unique([
        // Every request subject of every service, except the declared service-to-service calls.
        ...Object.values(Rpc).filter((s) => !serviceOnly.has(s)),
        USAGE_SUBJECT,
        GATEWAY_HEARTBEAT,
      ]),
      // Invalidations (answered), and the lifecycle events it drops cached keys and sessions on.
      subscribe: unique([GATEWAY_INVALIDATE, ...KEY_LIFECYCLE_SUBJECTS, ...MEMBER_EVENT_SUBJECTS, `${natsInboxPrefix('gateway')}.>`]),
      allowResponses: true,
    },
    // Identity alone publishes key, member and tenant lifecycle events (KEYWAY's subjects) and
    // asks the gateways to drop keys; it hears their heartbeats.
    service('identity', [...STREAMS.keys.subjects, GATEWAY_INVALIDATE], [GATEWAY_HEARTBEAT]),
    service('contacts', [], []),
    service('journeys', [], []),
    service('audit-log', [...STREAMS.auditHeads.subjects], []),
    {
      user: 'reader',
      passwordEnv: natsPasswordEnv('reader'),
      publish: unique([...reads('reader'), ...jsInfo('reader')]),
      subscribe: [`${natsInboxPrefix('reader')}.>`],
      allowResponses: false,
    },
  ];
}

const quote = (s: string): string => JSON.stringify(s);
const list = (items: string[], indent: string): string =>
  `[\n${items.map((i) => `${indent}  ${quote(i)}`).join(',\n')}\n${indent}]`;

/**
 * The nats-server `authorization` block (include it from a server config). Passwords are
 * `$NATS_PASSWORD_<USER>` references, resolved from the server's environment at start: the
 * server refuses to start when one is missing.
 */
export function renderNatsAuthConf(perms: NatsUserPermissions[] = natsPermissions()): string {
  const users = perms.map((p) =>
    [
      `    {`,
      `      user: ${quote(p.user)}`,
      `      password: $${p.passwordEnv}`,
      `      permissions: {`,
      `        publish: { allow: ${list(p.publish, '        ')} }`,
      `        subscribe: { allow: ${list(p.subscribe, '        ')} }`,
      ...(p.allowResponses ? [`        allow_responses: true`] : []),
      `      }`,
      `    }`,
    ].join('\n'),
  );
  return [
    '# Generated by `npm run nats:auth` from packages/contracts/src/nats-permissions.ts: do not edit.',
    '# Each service connects as its own user (docs/operations/walls.md). Passwords come from the',
    "# server's environment (NATS_PASSWORD_<USER>), never from this file.",
    'authorization {',
    '  users: [',
    users.join('\n'),
    '  ]',
    '}',
    '',
  ].join('\n');
}

/**
 * The same block as a Kubernetes ConfigMap (`infra/k8s/nats-auth.yaml`), for the NATS pods to
 * mount beside their server config; the passwords come from a Secret into their environment.
 */
export function renderNatsAuthConfigMap(conf: string = renderNatsAuthConf()): string {
  return [
    '# Generated by `npm run nats:auth` from packages/contracts/src/nats-permissions.ts: do not edit.',
    '# Mount it in the NATS pods and `include auth.conf` (docs/operations/walls.md); the passwords',
    '# (NATS_PASSWORD_<USER>) come from a Secret into the server\'s environment.',
    'apiVersion: v1',
    'kind: ConfigMap',
    'metadata:',
    '  name: keyway-nats-auth',
    '  labels: { app.kubernetes.io/part-of: keyway }',
    'data:',
    '  auth.conf: |',
    ...conf.trimEnd().split('\n').map((line) => (line === '' ? '' : `    ${line}`)),
    '',
  ].join('\n');
}
