import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALL_SCOPES } from '@keyway/contracts';
import { eventually } from '@keyway/testing';
import { check, type FaultWindow, type Findings } from './checks';
import { now, SoakClient } from './client';
import { Load, TINY_LIMIT } from './load';
import { REPLICATED, startTopology, type Slot, type Topology } from './topology';

export interface SoakOptions {
  /** Seconds of load (and faults). */
  seconds: number;
  /** A kill every this many ms, ±25 %. */
  killEveryMs: number;
  /** The seed of every random choice (which replica, which command), printed for a re-run. */
  seed: number;
}

export interface SoakResult extends Findings {
  /** Where every process's output went, for a failed run. */
  logFile: string;
}

/** The operator's limits for the soak's tenant: its keys' own limits must bind, not the tenant's. */
const HIGH_CEILING = { burst_per_second: 1_000_000_000, per_minute: 1_000_000_000, per_hour: 1_000_000_000, daily: 1_000_000_000 };

/** mulberry32: small, seedable, good enough to choose replicas. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const soakOptions = (env: NodeJS.ProcessEnv, defaultSeconds: number): SoakOptions => ({
  seconds: Number(env.SOAK_SECONDS ?? defaultSeconds),
  killEveryMs: Number(env.SOAK_KILL_EVERY_MS ?? 3_000),
  seed: Number(env.SOAK_SEED ?? Math.floor(Math.random() * 2 ** 31)),
});

/** The tenant, the load's all-scope key and the tiny-limit key. */
async function setUp(topology: Topology): Promise<{ tenantId: string; token: string; limited: string }> {
  const admin = await fetch(`${topology.gateways[0]!.current.adminUrl}/admin/v1/tenants`, {
    method: 'POST',
    headers: { authorization: `Bearer ${topology.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Soak', rate_limit_ceiling: HIGH_CEILING }),
  });
  const tenant = (await admin.json()) as { tenant: { id: string }; root_key: { key: string } };
  if (admin.status !== 201) throw new Error(`POST /admin/v1/tenants answered ${admin.status} ${JSON.stringify(tenant)}`);
  const setup = new SoakClient(topology.gateways);
  const issue = async (body: unknown): Promise<string> => {
    const r = await setup.call('setup', 'POST', '/v1/keys', { token: tenant.root_key.key, body });
    if (r?.status !== 201) throw new Error(`creating a soak key answered ${r?.status} ${JSON.stringify(r?.body)}`);
    return r.body!.key as string;
  };
  const token = await issue({ ...Load.keyBody('soak-load', [...ALL_SCOPES]) });
  const limited = await issue({ name: 'soak-limited', scopes: ['contacts:read'], rate_limit: TINY_LIMIT });
  return { tenantId: tenant.tenant.id, token, limited };
}

/**
 * The faults: every few seconds a replica (one of the eight, each app's turn in a shuffled order)
 * gets kill -9 and is started again; halfway through, NATS is killed and started again on the same
 * port and store. One fault at a time, so each app always has a replica up (NATS is one). Each
 * window runs from the kill until the replacement (or, for NATS, every replica) answers ready.
 */
async function faults(topology: Topology, opts: SoakOptions, random: () => number, windows: FaultWindow[], errors: string[]): Promise<void> {
  const started = now();
  const end = started + opts.seconds * 1_000;
  let natsRestarted = false;
  let turn: Slot[] = [];
  let rounds = 0;
  for (;;) {
    await pause(opts.killEveryMs * (0.75 + 0.5 * random()));
    const over = now() >= end;
    // Halfway, or late (a slow restart ate the time) but never skipped.
    if (!natsRestarted && (over || now() - started >= (opts.seconds * 1_000) / 2)) {
      natsRestarted = true;
      const killAt = now();
      await topology.infra.nats!.restart();
      await eventually(async () => (await Promise.all(topology.all.map((s) => fetch(`${s.url}/health/ready`).then((r) => r.status === 200, () => false)))).every(Boolean), 60_000, 100).catch(
        (err: unknown) => void errors.push(`after the NATS restart not every replica was ready again: ${String(err)}`),
      );
      windows.push({ target: 'nats', killAt, readyAt: now() });
      continue;
    }
    if (over) break;
    if (turn.length === 0) {
      const shuffle = <T>(list: T[]): T[] => list.sort(() => random() - 0.5);
      // The first round starts with identity and a gateway, whose kills test the most (the
      // event store and revocations; cut connections and the shared limits): a short run gets them.
      const apps = rounds++ === 0 ? [...shuffle(['identity', 'gateway'] as const), ...shuffle(['contacts', 'audit-log'] as const)] : shuffle([...REPLICATED]);
      turn = apps.map((app) => topology.killable.filter((s) => s.app === app)[random() < 0.5 ? 0 : 1]!);
    }
    const slot = turn.shift()!;
    const killAt = now();
    await slot.kill();
    try {
      await slot.start();
    } catch (err) {
      errors.push(`${slot.name} did not come back after kill -9: ${String(err).slice(0, 500)}`);
      await slot.start().catch(() => undefined);
    }
    windows.push({ target: slot.name, killAt, readyAt: now() });
  }
}

/** Runs the soak and answers its counts and failures (printing is the caller's). */
export async function runSoak(opts: SoakOptions): Promise<SoakResult> {
  const random = seeded(opts.seed);
  const bootStart = now();
  const topology = await startTopology('soak');
  const bootMs = now() - bootStart;
  const logFile = join(tmpdir(), `keyway-soak-${process.pid}-${Date.now()}.log`);
  try {
    const { tenantId, token, limited } = await setUp(topology);
    const client = new SoakClient(topology.gateways);
    const load = new Load(client, token, limited, random);
    const windows: FaultWindow[] = [];
    const errors: string[] = [];
    const loadStart = now();
    load.start();
    try {
      await faults(topology, opts, random, windows, errors);
    } finally {
      await load.stop();
    }
    const loadMs = now() - loadStart;
    const checkStart = now();
    const findings = await check(topology, client.attempts, load.record, windows, tenantId, token);
    const checkMs = now() - checkStart;
    const statuses = client.attempts.reduce((m, a) => m.set(a.status, (m.get(a.status) ?? 0) + 1), new Map<number, number>());
    const kills = windows.filter((w) => w.target !== 'nats');
    const byApp = REPLICATED.map((app) => `${app} ${kills.filter((w) => w.target.startsWith(`${app}-`)).length}`).join(', ');
    const recovery = kills.map((w) => w.readyAt - w.killAt);
    findings.counts.unshift(
      ['seed', opts.seed],
      ['seconds: boot / load / checks', [bootMs, loadMs, checkMs].map((ms) => (ms / 1_000).toFixed(1)).join(' / ')],
      ['requests (attempts)', `${client.attempts.length} (${(client.attempts.length / (loadMs / 1_000)).toFixed(0)}/s)`],
      ['calls answered on a retry / on the other gateway / never', `${client.retries.answeredOnRetry} / ${client.retries.onOtherGateway} / ${client.retries.gaveUp}`],
      ['by status (0: no answer)', [...statuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}: ${n}`).join(', ')],
      ['kills -9 / restarts', `${kills.length} / ${kills.length} (${byApp})`],
      ['replica back ready after kill, ms (max / mean)', recovery.length ? `${Math.round(Math.max(...recovery))} / ${Math.round(recovery.reduce((a, b) => a + b, 0) / recovery.length)}` : 'n/a'],
      ['NATS restarts (back ready, ms)', windows.filter((w) => w.target === 'nats').map((w) => Math.round(w.readyAt - w.killAt)).join(', ') || '0'],
    );
    findings.failures.unshift(...errors);
    if (kills.length === 0) findings.failures.push('no replica was killed: the soak proved nothing');
    if (!windows.some((w) => w.target === 'nats')) findings.failures.push('NATS was not restarted');
    return { ...findings, logFile };
  } finally {
    writeFileSync(logFile, topology.all.map((s) => s.output()).join('\n'));
    await topology.stop();
  }
}

/** The counts as the soak prints them. */
export function formatResult(r: SoakResult): string {
  const width = Math.max(...r.counts.map(([k]) => k.length));
  const lines = ['', 'Soak test: counts', ...r.counts.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)];
  lines.push(r.failures.length ? `FAILED (${r.failures.length}):` : 'PASSED: every check held', ...r.failures.map((f) => `  - ${f}`));
  lines.push(`  process output: ${r.logFile}`, '');
  return lines.join('\n');
}
