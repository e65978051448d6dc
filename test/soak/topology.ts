import { randomBytes } from 'node:crypto';
import { ServiceProcess, startInfra, type TestInfra } from '@keyway/testing';

/** The apps the soak runs two of (journeys runs once and is never killed). */
export const REPLICATED = ['gateway', 'identity', 'contacts', 'audit-log'] as const;
type App = (typeof REPLICATED)[number] | 'journeys';

/**
 * One replica's place in the topology: an app, a fixed environment (a gateway keeps its
 * GATEWAY_ID across restarts, as a pod keeps its name), and every incarnation it has had, so the
 * output of a killed one can still be searched. A restart is a new child process on a new port:
 * the load generator reads `url` at each request, so it follows.
 */
export class Slot {
  readonly incarnations: ServiceProcess[] = [];
  /** False from the moment it is killed until its next incarnation is ready. */
  up = false;

  constructor(
    readonly name: string,
    readonly app: App,
    private readonly env: Record<string, string>,
  ) {}

  get current(): ServiceProcess {
    const p = this.incarnations.at(-1);
    if (!p) throw new Error(`${this.name} was never started`);
    return p;
  }

  get url(): string {
    return this.current.url;
  }

  async start(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const p = new ServiceProcess(this.app, this.env);
      this.incarnations.push(p);
      try {
        await p.start();
        this.up = true;
        return;
      } catch (err) {
        // The harness picks a free port, then the child binds it: another process may take it in
        // between (EADDRINUSE). That is the harness's race, not the platform's: one more try.
        if (attempt >= 2 || !p.output.includes('EADDRINUSE')) throw err;
      }
    }
  }

  /** kill -9, like a crashed pod. */
  async kill(): Promise<void> {
    this.up = false;
    await this.current.kill('SIGKILL');
  }

  /** Everything each incarnation printed, each under a header naming it. */
  output(): string {
    return this.incarnations.map((p, i) => `--- ${this.name} #${i + 1}\n${p.output}`).join('\n');
  }
}

export interface Topology {
  infra: TestInfra;
  adminToken: string;
  gateways: Slot[];
  /** The eight replicas the soak may kill: two of each replicated app. */
  killable: Slot[];
  all: Slot[];
  stop(): Promise<void>;
}

/**
 * The soak's platform: a private database set and nats-server (restartable, its store kept), two
 * replicas of gateway, identity, contacts and audit-log and one journeys, each a built child
 * process. The gateways share Redis limits. Logs at `warn`, so the limiter's fallback warning
 * reaches the captured output.
 */
export async function startTopology(label: string): Promise<Topology> {
  const infra = await startInfra(label);
  if (!infra.redisUrl) throw new Error('Redis does not answer at 127.0.0.1:6379: the soak checks limits shared by two gateways');
  if (!infra.nats) throw new Error('the soak restarts its own nats-server: install nats-server (apt-get install nats-server)');
  const adminToken = `kwadm_${randomBytes(24).toString('hex')}`;
  const common = { ...infra.env, LOG_LEVEL: process.env.SOAK_LOG_LEVEL ?? 'warn' };
  const gatewayEnv = {
    ...common,
    REDIS_URL: infra.redisUrl,
    KEYWAY_ADMIN_TOKEN: adminToken,
    // The default 50 ms is for a quiet production Redis; on a loaded 2-core machine running ten
    // processes, load alone would push a call past it and the limiter would (rightly) fall back to
    // per-replica memory. The soak is about kills, not a slow Redis: a fallback here is a finding.
    // 2 s was not enough for a gateway just restarted on a machine at load 20 (its first command
    // waits for the connection: "Command timed out" once, before Redis had ever answered).
    RATE_LIMIT_REDIS_TIMEOUT_MS: process.env.SOAK_REDIS_TIMEOUT_MS ?? '5000',
  };
  const slot = (app: App, n: string): Slot =>
    new Slot(`${app}-${n}`, app, app === 'gateway' ? { ...gatewayEnv, GATEWAY_ID: `gw_soak_${n}` } : common);
  const pairs = REPLICATED.map((app) => [slot(app, 'a'), slot(app, 'b')] as const);
  const journeys = slot('journeys', 'a');
  const killable = pairs.flat();
  const all = [...killable, journeys];
  const stop = async (): Promise<void> => {
    // Politely, but a process that does not stop in 10 s is not left behind.
    const end = async (p: ServiceProcess | undefined): Promise<void> => {
      await Promise.race([p?.kill('SIGTERM'), new Promise((r) => setTimeout(r, 10_000).unref())]).catch(() => undefined);
      await p?.kill('SIGKILL');
    };
    await Promise.all(all.map((s) => end(s.incarnations.at(-1))));
    await infra.stop();
  };
  try {
    // Identity first (it ensures the stream the others consume), then one of each app, so each
    // database is migrated by one process, then the second replicas: two at a time, one per
    // core, since Nest's boot is CPU-bound and the harness gives each 30 s to be ready.
    const [gateways, identities, ...others] = pairs;
    await identities![0].start();
    const rest = [...others.map(([a]) => a), journeys, gateways![0], identities![1], ...others.map(([, b]) => b), gateways![1]];
    for (let i = 0; i < rest.length; i += 2) await Promise.all(rest.slice(i, i + 2).map((s) => s.start()));
  } catch (err) {
    await stop();
    throw err;
  }
  return { infra, adminToken, gateways: [...pairs[0]!], killable, all, stop };
}
