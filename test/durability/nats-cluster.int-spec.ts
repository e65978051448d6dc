import { STREAMS } from '@keyway/contracts';
import { ensureStream, jetStreamContext } from '@keyway/messaging';
import { eventually, freePort, natsServerBinary } from '@keyway/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NatsNode } from './nats-node';

const ROOT = join(__dirname, '../..');

/** One node's config from infra/nats/cluster.conf.tmpl, through the same script that renders compose and k8s. */
function render(opts: Record<string, unknown>): string {
  return execFileSync(process.execPath, [join(ROOT, 'scripts/nats-cluster.mjs'), '--node', JSON.stringify(opts)], { encoding: 'utf8' });
}

/** `nats-server -t`: whether this server accepts the config (stderr says why not). */
function validates(config: string, dir: string, env: Record<string, string> = {}): { ok: boolean; out: string } {
  const file = join(dir, `check-${Math.random().toString(36).slice(2)}.conf`);
  writeFileSync(file, config);
  const r = spawnSync(natsServerBinary()!, ['-c', file, '-t'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...env } });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

/**
 * The cluster template boots a real 3-node JetStream cluster on Debian's nats-server 2.9 (without
 * `sync_interval`, which 2.9 refuses), and identity's stream creation makes KEYWAY with 3 replicas
 * there (one on a single server: streams.int-spec).
 */
describe('NATS cluster from infra/nats/cluster.conf.tmpl', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyway-cluster-'));
  const nodes: NatsNode[] = [];
  let nc: NatsConnection | undefined;

  afterAll(async () => {
    await nc?.close();
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    rmSync(dir, { recursive: true, force: true });
  });

  it('renders a config 2.9 accepts, with the users of auth.conf; with sync_interval only for NATS >= 2.11', () => {
    const base = { serverName: 'check', host: '127.0.0.1', storeDir: join(dir, 'check'), pidFile: join(dir, 'check.pid'), routes: ['nats-route://127.0.0.1:6222'] };
    writeFileSync(join(dir, 'auth.conf'), readFileSync(join(ROOT, 'infra/nats/auth.conf')));
    const auth = readFileSync(join(ROOT, 'infra/nats/auth.conf'), 'utf8');
    const passwords = Object.fromEntries([...auth.matchAll(/\$(NATS_PASSWORD_[A-Z0-9_]+)/g)].map((m) => [m[1]!, 'x']));
    expect(validates(render({ ...base, sync: false, auth: true }), dir, passwords)).toMatchObject({ ok: true });
    const production = render({ ...base, sync: true, auth: true });
    expect(production).toMatch(/^\s*sync_interval: always$/m);
    expect(validates(production, dir, passwords).out).toMatch(/unknown field "sync_interval"/);
  });

  it('boots 3 nodes that elect a JetStream leader, and KEYWAY gets 3 replicas', async () => {
    const ports = await Promise.all(Array.from({ length: 9 }, () => freePort()));
    const cluster = [0, 1, 2].map((i) => ({ client: ports[i]!, route: ports[3 + i]!, monitor: ports[6 + i]! }));
    const routes = cluster.map((c) => `nats-route://127.0.0.1:${c.route}`);
    for (const [i, c] of cluster.entries()) {
      const nodeDir = join(dir, `n${i + 1}`);
      mkdirSync(nodeDir);
      const config = render({
        serverName: `n${i + 1}`,
        host: '127.0.0.1',
        clientPort: c.client,
        clusterPort: c.route,
        monitorPort: c.monitor,
        storeDir: join(nodeDir, 'store'),
        pidFile: join(nodeDir, 'nats.pid'),
        maxFileStore: '1GB',
        routes,
        sync: false,
        auth: false,
      });
      nodes.push(new NatsNode(nodeDir, c.client, config));
    }
    await Promise.all(nodes.map((n) => n.start()));
    const meta = await eventually(
      async () => {
        const jsz = (await (await fetch(`http://127.0.0.1:${cluster[0]!.monitor}/jsz`)).json()) as { meta_cluster?: { leader?: string; cluster_size?: number } };
        // A leader can be elected by two of the three (a quorum) before the third has joined.
        return jsz.meta_cluster?.leader && jsz.meta_cluster.cluster_size === 3 ? jsz.meta_cluster : undefined;
      },
      30_000,
      200,
    );
    expect(meta.cluster_size).toBe(3);
    expect(['n1', 'n2', 'n3']).toContain(meta.leader);

    nc = await connect({ servers: nodes.map((n) => n.url) });
    const { jsm } = await jetStreamContext(nc);
    // As identity's relay service creates it (apps/identity/src/relay/relay.service.ts).
    const info = await eventually(
      async () => {
        try {
          return await ensureStream(jsm, { name: STREAMS.keys.name, subjects: [...STREAMS.keys.subjects], duplicateWindowMs: 10 * 60_000 });
        } catch {
          return undefined; // the cluster may still be placing its first stream's group
        }
      },
      30_000,
      500,
    );
    expect(info.config.num_replicas).toBe(3);
    expect(info.cluster?.replicas ?? []).toHaveLength(2);
    // Ensuring it again changes nothing (every identity replica calls it at boot).
    expect((await ensureStream(jsm, { name: STREAMS.keys.name, subjects: [...STREAMS.keys.subjects], duplicateWindowMs: 10 * 60_000 })).config.num_replicas).toBe(3);
  });
});
