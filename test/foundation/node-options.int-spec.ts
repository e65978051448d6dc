import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The gateway's heap bounds (DESIGN: RSS < 250 MB with 100,000 keys cached) live in
 * apps/gateway/package.json (`keyway.nodeOptions`); npm start and the benches read them there,
 * and docker-compose.yml and the k8s manifest repeat them. They must say the same thing, and
 * Node must accept them in NODE_OPTIONS (not every flag is allowed there).
 */
const ROOT = join(__dirname, '..', '..');
const read = (...p: string[]) => readFileSync(join(ROOT, ...p), 'utf8');
const gatewayPackage = JSON.parse(read('apps', 'gateway', 'package.json')) as { keyway: { nodeOptions: string }; scripts: { start: string } };
const shipped = gatewayPackage.keyway.nodeOptions;

describe('the gateway heap bounds', () => {
  it('are the same in package.json, docker-compose.yml and infra/k8s/gateway.yaml', () => {
    expect(shipped).toMatch(/--max-old-space-size=\d+/);
    expect(read('docker-compose.yml')).toContain(`NODE_OPTIONS: "${shipped}"`);
    expect(read('infra', 'k8s', 'gateway.yaml')).toContain(`{ name: NODE_OPTIONS, value: "${shipped}" }`);
    expect(gatewayPackage.scripts.start).toBe(`node ${shipped} dist/main.js`);
  });

  it('are accepted by Node in NODE_OPTIONS and set the old-space limit', () => {
    const r = spawnSync(process.execPath, ['-p', "require('v8').getHeapStatistics().heap_size_limit"], {
      env: { PATH: process.env.PATH, NODE_OPTIONS: shipped },
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    const mb = Number(/--max-old-space-size=(\d+)/.exec(shipped)![1]);
    // The limit covers old space plus the young generation.
    expect(Number(r.stdout) / 2 ** 20).toBeGreaterThanOrEqual(mb);
    expect(Number(r.stdout) / 2 ** 20).toBeLessThan(mb + 64);
  });
});
