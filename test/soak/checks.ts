import { serviceDatabaseUrl } from '@keyway/database';
import { jetStreamContext } from '@keyway/messaging';
import { eventually } from '@keyway/testing';
import { connect } from '@nats-io/transport-node';
import { Client } from 'pg';
import type { Attempt } from './client';
import { TINY_LIMIT, type KeyCommand, type LoadRecord } from './load';
import type { Topology } from './topology';

/** A fault the soak caused: from the kill (or NATS stop) until the replacement answered ready. */
export interface FaultWindow {
  target: string;
  killAt: number;
  readyAt: number;
}

/**
 * After a replica is ready again, answers still in flight from before may arrive a little later
 * (a request sent to the dead replica waits out its RPC timeout): a 5xx counts as "during a kill"
 * when the request was in flight at any moment of [kill, ready + this].
 */
const GRACE_MS = 1_000;
/** The limiter's warning (apps/gateway/src/rate-limit/rate-limiter.ts) when Redis stops answering. */
const FALLBACK_LOG = "rate limits fall back to this replica's memory";

export interface Findings {
  counts: Array<[string, string | number]>;
  failures: string[];
}

interface StoredEvent {
  event_id: string;
  stream_id: string;
  type: string;
  tenant_id: string;
  name: string | null;
}

const inFlightDuring = (a: Attempt, w: FaultWindow): boolean => a.sentAt <= w.readyAt + GRACE_MS && a.answeredAt >= w.killAt;

/**
 * The 5xx answers and cut connections a kill does not explain. A 5xx is explained only as `503
 * unavailable` in flight during any fault (a dead identity or NATS shows at either gateway); no
 * answer at all, only during a kill of that very gateway.
 */
export function unexcusedFaults(attempts: readonly Attempt[], windows: readonly FaultWindow[]): Attempt[] {
  return attempts.filter((a) => {
    if (a.status === 0) return !windows.some((w) => w.target === a.gateway && inFlightDuring(a, w));
    if (a.status < 500) return false;
    return !(a.status === 503 && a.code === 'unavailable' && windows.some((w) => inFlightDuring(a, w)));
  });
}

async function query<T>(databaseUrl: string, service: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const pg = new Client({ connectionString: serviceDatabaseUrl(databaseUrl, service) });
  await pg.connect();
  try {
    return (await pg.query(sql, params)).rows as T[];
  } finally {
    await pg.end();
  }
}

/** Every message of the stream, by message id (the event id): how many times each is there. */
async function readStream(natsUrl: string, stream: string): Promise<Map<string, number>> {
  const nc = await connect({ servers: natsUrl });
  try {
    const { js, jsm } = await jetStreamContext(nc);
    const total = (await jsm.streams.info(stream)).state.messages;
    const seen = new Map<string, number>();
    const consumer = await js.consumers.get(stream);
    let read = 0;
    while (read < total) {
      const batch = await consumer.fetch({ max_messages: Math.min(1_000, total - read), expires: 5_000 });
      let got = 0;
      for await (const m of batch) {
        const id = m.headers?.get('Nats-Msg-Id') ?? `(no id, seq ${m.seq})`;
        seen.set(id, (seen.get(id) ?? 0) + 1);
        got++;
      }
      if (got === 0) throw new Error(`stream ${stream}: read ${read} of ${total} messages, then nothing`);
      read += got;
    }
    return seen;
  } finally {
    await nc.close();
  }
}

/** The largest number of admitted calls that certainly fell inside one window (sent and answered in it). */
export function maxAdmittedInWindow(admitted: Attempt[], windowMs: number): number {
  const bySent = [...admitted].sort((a, b) => a.sentAt - b.sentAt);
  let max = 0;
  for (let i = 0; i < bySent.length; i++) {
    const start = bySent[i]!.sentAt;
    let n = 0;
    for (let j = i; j < bySent.length && bySent[j]!.sentAt < start + windowMs; j++) if (bySent[j]!.answeredAt < start + windowMs) n++;
    max = Math.max(max, n);
  }
  return max;
}

/** Sums a metric's samples in Prometheus text; undefined when the metric is not there. */
function metricSum(text: string, name: string): number | undefined {
  const samples = text.split('\n').filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  if (samples.length === 0) return undefined;
  return samples.reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

const tally = <T>(items: T[], key: (t: T) => string): string =>
  [...items.reduce((m, t) => m.set(key(t), (m.get(key(t)) ?? 0) + 1), new Map<string, number>())]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, n]) => `${k}: ${n}`)
    .join(', ') || 'none';

/**
 * The soak's verdict, once the load has stopped and every replica is back: each promise of
 * issue 13's soak, checked against what the client saw, the event store, JetStream, the audit
 * trail, and every gateway incarnation's output.
 */
export async function check(topology: Topology, attempts: Attempt[], load: LoadRecord, windows: FaultWindow[], tenantId: string, auditToken: string): Promise<Findings> {
  const { infra } = topology;
  const counts: Findings['counts'] = [];
  const failures: string[] = [];
  const fail = (msg: string): void => void failures.push(msg);

  // --- lifecycle events: store = stream = trail, each exactly once
  const store = await query<StoredEvent>(infra.databaseUrl, 'identity', `SELECT event_id, stream_id, type, tenant_id, data->>'name' AS name FROM events`);
  const storeIds = new Set(store.map((e) => e.event_id));
  let stream = new Map<string, number>();
  const inStream = async (): Promise<boolean> => {
    stream = await readStream(infra.natsUrl, infra.stream);
    return [...storeIds].every((id) => stream.has(id));
  };
  await eventually(inStream, 30_000, 500).catch(() => undefined);
  const lostInStream = [...storeIds].filter((id) => !stream.has(id));
  const dupInStream = [...stream].filter(([, n]) => n > 1);
  const strangerInStream = [...stream.keys()].filter((id) => !storeIds.has(id));

  let trail: Array<{ id: string; linked: boolean }> = [];
  const inTrail = async (): Promise<boolean> => {
    trail = await query(infra.databaseUrl, 'audit-log', `SELECT id, chain_pos IS NOT NULL AS linked FROM audit_events WHERE type <> 'used'`);
    const linked = new Set(trail.filter((t) => t.linked).map((t) => t.id));
    return [...storeIds].every((id) => linked.has(id));
  };
  await eventually(inTrail, 30_000, 500).catch(() => undefined);
  const trailIds = new Map<string, number>();
  for (const t of trail) trailIds.set(t.id, (trailIds.get(t.id) ?? 0) + 1);
  const lostInTrail = [...storeIds].filter((id) => !trailIds.has(id));
  const unlinked = trail.filter((t) => !t.linked).length;
  const dupInTrail = [...trailIds].filter(([, n]) => n > 1);
  const strangerInTrail = [...trailIds.keys()].filter((id) => !storeIds.has(id));

  let verify = { status: 0 };
  let verification: { verified?: boolean; entries?: number; first_bad?: unknown } = {};
  for (const g of topology.gateways) {
    const res = await fetch(`${g.url}/v1/audit-events/verify`, { headers: { authorization: `Bearer ${auditToken}` } }).catch(() => undefined);
    if (res === undefined) continue;
    verify = res;
    verification = (await res.json()) as typeof verification;
    break;
  }
  const tenantEvents = store.filter((e) => e.tenant_id === tenantId).length;

  counts.push(
    ['events in the store', store.length],
    ['events in the stream (distinct / messages)', `${stream.size} / ${[...stream.values()].reduce((a, b) => a + b, 0)}`],
    ['events in the trail (linked)', `${trailIds.size} (${trail.length - unlinked})`],
    ['lost: stream / trail', `${lostInStream.length} / ${lostInTrail.length}`],
    ['duplicated: stream / trail', `${dupInStream.length} / ${dupInTrail.length}`],
    ['not in the store: stream / trail', `${strangerInStream.length} / ${strangerInTrail.length}`],
    ['trail verify (tenant events in store)', `${verify.status} ${JSON.stringify({ verified: verification.verified, entries: verification.entries })} (${tenantEvents})`],
  );
  if (lostInStream.length) {
    fail(`${lostInStream.length} stored events never reached the stream, e.g. ${lostInStream.slice(0, 3).join(', ')}`);
    // For whoever debugs the relay: where its checkpoint stands, and the first and last lost rows.
    const checkpoints = await query(infra.databaseUrl, 'identity', `SELECT * FROM relay_checkpoints`);
    const rows = await query(infra.databaseUrl, 'identity', `SELECT to_jsonb(e) - 'data' - 'actor' AS row FROM events e WHERE event_id = ANY($1) ORDER BY global_position`, [lostInStream]);
    counts.push(['diagnosis: relay checkpoints', JSON.stringify(checkpoints)], ['diagnosis: first / last lost rows', JSON.stringify([rows[0], rows.at(-1)])]);
  }
  if (dupInStream.length) fail(`${dupInStream.length} events are in the stream more than once, e.g. ${dupInStream.slice(0, 3).map(([id, n]) => `${id}×${n}`).join(', ')}`);
  if (strangerInStream.length) fail(`${strangerInStream.length} stream messages are not in the event store, e.g. ${strangerInStream.slice(0, 3).join(', ')}`);
  if (lostInTrail.length) fail(`${lostInTrail.length} stored events are missing from the audit trail, e.g. ${lostInTrail.slice(0, 3).join(', ')}`);
  if (unlinked) fail(`${unlinked} audit entries were never linked into their tenant's chain`);
  if (dupInTrail.length || strangerInTrail.length) fail(`audit trail: ${dupInTrail.length} duplicated, ${strangerInTrail.length} not in the event store`);
  if (verify.status !== 200 || verification.verified !== true || verification.entries !== tenantEvents) {
    fail(`GET /v1/audit-events/verify answered ${verify.status} ${JSON.stringify(verification)}; the tenant has ${tenantEvents} events in the store`);
  }

  // --- every key command that answered 2xx left its event; none left two
  checkCommands(load.commands, store, counts, fail);

  // --- no request accepted after a revoke answered
  counts.push(['revokes answered / post-revoke probes / accepted', `${load.revoked.length} / ${load.probes} / ${load.acceptances.length}`]);
  for (const a of load.acceptances.slice(0, 5)) {
    fail(`revoked key ${a.keyId} was accepted (${a.status}) at ${a.gateway}, ${Math.round(a.sentAt - a.revokeAnsweredAt)} ms after its revoke answered`);
  }
  if (load.revoked.length === 0 || load.probes === 0) fail('no revoke answered and was probed: the check proved nothing');

  // --- shared limits held, and never from per-replica memory
  const limited = attempts.filter((a) => a.op === 'limited');
  const admitted = limited.filter((a) => a.status >= 200 && a.status < 300);
  const perSecond = maxAdmittedInWindow(admitted, 1_000);
  const perMinute = maxAdmittedInWindow(admitted, 60_000);
  const atBoth = new Set(admitted.map((a) => a.gateway)).size;
  counts.push(['limited key: calls / admitted / 429', `${limited.length} / ${admitted.length} / ${limited.filter((a) => a.status === 429).length}`]);
  counts.push(['limited key: most admitted in 1 s / in 60 s (limits)', `${perSecond} / ${perMinute} (${TINY_LIMIT.burst_per_second} / ${TINY_LIMIT.per_minute})`]);
  if (perSecond > TINY_LIMIT.burst_per_second) fail(`the shared limit admitted ${perSecond} calls within one second; its limit is ${TINY_LIMIT.burst_per_second}`);
  if (perMinute > TINY_LIMIT.per_minute) fail(`the shared limit admitted ${perMinute} calls within one minute; its limit is ${TINY_LIMIT.per_minute}`);
  if (admitted.length === 0 || atBoth < 2) fail(`the limited key was admitted at ${atBoth} gateway(s): the shared limit was not exercised across both`);

  const gatewayLogs = topology.gateways.flatMap((g) => g.incarnations.map((p, i) => ({ name: `${g.name} #${i + 1}`, output: p.output })));
  const fellBack = gatewayLogs.filter((l) => l.output.includes(FALLBACK_LOG));
  const metrics: string[] = [];
  for (const g of topology.gateways) {
    const res = await fetch(`${g.current.adminUrl}/metrics`).catch(() => undefined);
    const text = res?.status === 200 ? await res.text() : '';
    const total = metricSum(text, 'keyway_rate_limit_fallbacks_total');
    const gauge = metricSum(text, 'keyway_rate_limit_fallback');
    metrics.push(`${g.name}: ${total ?? 'n/a'}/${gauge ?? 'n/a'}`);
    if (total === undefined || gauge === undefined) fail(`${g.name}'s /metrics (${res?.status ?? 'no answer'}) has no keyway_rate_limit_fallback(s_total): the fallback cannot be checked there`);
    else if (total > 0 || gauge > 0) fail(`${g.name}'s /metrics shows the limiter fell back (fallbacks_total ${total}, fallback ${gauge})`);
  }
  counts.push(['limiter fallbacks: logged by incarnations', `${fellBack.length} of ${gatewayLogs.length}`]);
  counts.push(['limiter fallbacks: /metrics total/gauge', metrics.join(', ')]);
  for (const l of fellBack) fail(`${l.name} logged that rate limits fell back to its memory`);

  // --- every 5xx a 503 unavailable while a kill was in progress; no cut connection otherwise
  const fiveXx = attempts.filter((a) => a.status >= 500);
  const outside = unexcusedFaults(fiveXx, windows);
  counts.push(['5xx during a kill / outside', `${fiveXx.length - outside.length} / ${outside.length}`]);
  for (const a of outside.slice(0, 5)) fail(`${a.op} at ${a.gateway} answered ${a.status} ${a.code ?? ''} at +${Math.round(a.sentAt)} ms, outside every kill window`);
  const cut = attempts.filter((a) => a.status === 0);
  const cutOutside = unexcusedFaults(cut, windows);
  counts.push(['no answer (connection cut): during its gateway kill / outside', `${cut.length - cutOutside.length} / ${cutOutside.length}`]);
  for (const a of cutOutside.slice(0, 5)) fail(`${a.op} at ${a.gateway} got no answer at +${Math.round(a.sentAt)} ms, and that gateway was not being killed`);

  // --- anything else the load did not expect
  const expected = (a: Attempt): boolean =>
    a.status === 0 ||
    a.status === 503 ||
    (a.status >= 200 && a.status < 300) ||
    (a.op === 'limited' && a.status === 429) ||
    // A revoked key's current secret is `key_revoked`; one a rotation had already ended, `invalid_key`.
    (a.op === 'probe.revoked' && a.status === 401 && (a.code === 'key_revoked' || a.code === 'invalid_key')) ||
    // The idempotency layer's "the first attempt is still running": the client waits and retries.
    (a.status === 409 && a.code === 'conflict');
  const odd = attempts.filter((a) => !expected(a) && a.status < 500);
  counts.push(['unexpected 4xx', tally(odd, (a) => `${a.op} ${a.status} ${a.code ?? ''}`)]);
  if (odd.length) fail(`${odd.length} answers the load did not expect: ${tally(odd, (a) => `${a.op} ${a.status} ${a.code ?? ''}`)}`);
  return { counts, failures };
}

function checkCommands(commands: KeyCommand[], store: StoredEvent[], counts: Findings['counts'], fail: (msg: string) => void): void {
  const stored = new Map<string, number>();
  for (const e of store) {
    const k = e.type === 'created' ? `created ${e.name}` : `${e.type} ${e.stream_id}`;
    stored.set(k, (stored.get(k) ?? 0) + 1);
  }
  const keyOf = (c: KeyCommand): string => (c.event === 'created' ? `created ${c.keyName}` : `${c.event} ${c.keyId}`);
  const asked = new Map<string, { ok: number; sent: number; event: KeyCommand['event'] }>();
  for (const c of commands) {
    const a = asked.get(keyOf(c)) ?? { ok: 0, sent: 0, event: c.event };
    a.sent++;
    if (c.ok) a.ok++;
    asked.set(keyOf(c), a);
  }
  let missing = 0;
  let doubled = 0;
  for (const [k, a] of asked) {
    const n = stored.get(k) ?? 0;
    if (n < a.ok) {
      missing += a.ok - n;
      fail(`key command "${k}" answered 2xx ${a.ok} time(s); the event store holds ${n} such event(s)`);
    }
    // POSTs carry an Idempotency-Key on every attempt: one event per command, however often retried.
    // A PATCH has none, so a retry after a lost answer may rightly apply twice.
    if (a.event !== 'updated' && n > a.sent) {
      doubled += n - a.sent;
      fail(`key command "${k}" was sent ${a.sent} time(s) (retries with one Idempotency-Key); the store holds ${n} events`);
    }
  }
  counts.push(['key commands sent / answered 2xx', `${commands.length} / ${commands.filter((c) => c.ok).length} (${tally(commands, (c) => `${c.event} ${c.ok ? 'ok' : 'unanswered'}`)})`]);
  counts.push(['2xx key commands missing from the store / applied twice', `${missing} / ${doubled}`]);
}
