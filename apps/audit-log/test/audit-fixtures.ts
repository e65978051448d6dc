import { randomBytes } from 'node:crypto';
import { EVENT_SUBJECTS, eventSubject, MEMBER_EVENT_SUBJECTS, newId, TENANT_EVENT_SUBJECTS, type KeyEvent } from '@keyway/contracts';
import { ensureStream, jetStreamContext, publishEvent, type JetStreamClient, type JetStreamContext } from '@keyway/messaging';
import { loadConfig } from '@keyway/runtime';
import { startInfra, type TestInfra } from '@keyway/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { AuditLogEnv, type AuditLogConfig } from '../src/config';

/** The lifecycle types, cycled by `lifecycleEvent(i)`. */
const CYCLE = ['created', 'updated', 'disabled', 'enabled', 'rotated', 'rotation_completed', 'revoked', 'expired'] as const;

export interface EventShape {
  tenant: string;
  key?: string;
  mode?: 'live' | 'test';
  actor?: KeyEvent['actor'];
  at?: string;
}

/** The i-th lifecycle event of a made-up key: every type in turn, each with a valid payload. */
export function lifecycleEvent(i: number, s: EventShape): KeyEvent {
  const type = CYCLE[i % CYCLE.length]!;
  const occurred_at = s.at ?? new Date(Date.UTC(2025, 0, 1) + i * 1_000).toISOString();
  const base = {
    id: newId('event'),
    schema_version: 1 as const,
    occurred_at,
    tenant_id: s.tenant,
    key_id: s.key ?? `key_${s.tenant}`,
    prefix: `kw_${s.mode ?? 'live'}_abcd1234`,
    actor: s.actor ?? { type: 'key' as const, id: 'key_root' },
  };
  switch (type) {
    case 'created':
      return { ...base, type, data: { name: `k${i}`, scopes: ['keys:read'], environment: s.mode ?? 'live', expires_at: null, rate_limit: null, metadata: { n: i } } };
    case 'updated':
      return { ...base, type, data: { name: `renamed ${i}` } };
    case 'disabled':
    case 'enabled':
      return { ...base, type, data: {} };
    case 'rotated':
      return { ...base, type, data: { previous_prefix: 'kw_live_zzzz9999', previous_valid_until: null } };
    case 'rotation_completed':
      return { ...base, type, data: { ended_prefixes: ['kw_live_zzzz9999'] } };
    case 'revoked':
      return { ...base, type, data: { reason: `r${i}` } };
    case 'expired':
      return { ...base, type, data: { expires_at: occurred_at } };
  }
}

/** Publishes with the event id as message id (as identity's relay does). */
export const publishKeyEvent = (js: JetStreamClient, e: KeyEvent) => publishEvent(js, eventSubject(e.type), e);

/** What a rebuild must reproduce, per row: content, position and link. */
export const TRAIL_SNAPSHOT_SQL = `
  SELECT id, tenant_id, key_id, type, schema_version, occurred_at, prefix, actor_type, actor_id, data, environment,
         chain_pos::text AS chain_pos, encode(hash, 'hex') AS hash
  FROM audit_events ORDER BY tenant_id, chain_pos`;
export const HEADS_SNAPSHOT_SQL = `
  SELECT tenant_id, position::text AS position, encode(hash, 'hex') AS hash, live_count::text AS live, test_count::text AS test
  FROM audit_heads WHERE position > 0 ORDER BY tenant_id`;

export interface ChainTestBed {
  infra: TestInfra;
  nc: NatsConnection;
  jet: JetStreamContext;
  /** Two replicas' worth of disorder: four writers, batches of 16; a chain key of this run. */
  config: AuditLogConfig;
}

/** Own infra, the key (and member) event stream as identity creates it, and a config that stores out of order. */
export async function chainTestBed(label: string, env: Record<string, string> = {}): Promise<ChainTestBed> {
  const infra = await startInfra(label);
  const nc = await connect({ servers: infra.natsUrl });
  const jet = await jetStreamContext(nc);
  await ensureStream(jet.jsm, { name: infra.stream, subjects: [EVENT_SUBJECTS, ...MEMBER_EVENT_SUBJECTS, ...TENANT_EVENT_SUBJECTS], duplicateWindowMs: 10 * 60_000 });
  const config = loadConfig(AuditLogEnv, {
    ...infra.env,
    AUDIT_CHAIN_KEY: randomBytes(32).toString('hex'),
    // Every replica writes (no writer lease), four writers each: the disorder the linker is for.
    AUDIT_WRITER_LEASE: 'off',
    AUDIT_WRITERS: '4',
    AUDIT_BATCH_MAX: '16',
    AUDIT_HEAD_PUBLISH_MS: '20',
    ...env,
  });
  return { infra, nc, jet, config };
}
