import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * `docker compose config` validates docker-compose.yml against the Compose spec (interpolation,
 * merge keys, depends_on targets) with no engine running. Debian ships the same check as the
 * older `docker-compose`; either will do.
 */
const ROOT = join(__dirname, '..', '..');
const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');

const runs = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });

function composeCommand(): { cmd: string; args: string[] } | { skip: string } {
  if (runs('docker', ['--version']).status !== 0) return { skip: 'the docker client is not installed' };
  if (runs('docker', ['compose', 'version']).status === 0) return { cmd: 'docker', args: ['compose'] };
  if (runs('docker-compose', ['version']).status === 0) return { cmd: 'docker-compose', args: [] };
  return { skip: 'docker is installed but neither `docker compose` nor `docker-compose` is (apt-get install docker-compose)' };
}

describe('docker-compose.yml', () => {
  const compose = composeCommand();

  it('is a valid compose file', () => {
    expect(existsSync(COMPOSE_FILE)).toBe(true);
    if ('skip' in compose) {
      console.warn(`SKIPPED docker compose config: ${compose.skip}`);
      return;
    }
    // Interpolation must not depend on the caller's shell: no variable is required.
    const env = { ...process.env, KEYWAY_ADMIN_TOKEN: '', POSTGRES_PASSWORD: '' };
    const r = spawnSync(compose.cmd, [...compose.args, '-f', COMPOSE_FILE, 'config', '-q'], { encoding: 'utf8', env, timeout: 30_000 });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
  });

  it('runs all five apps and the three servers', () => {
    if ('skip' in compose) {
      console.warn(`SKIPPED docker compose config --services: ${compose.skip}`);
      return;
    }
    const r = spawnSync(compose.cmd, [...compose.args, '-f', COMPOSE_FILE, 'config', '--services'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(0);
    // The 3-node cluster is a profile: `docker compose` leaves it out of the list, the older
    // `docker-compose` lists it.
    const profiled = new Set(['nats-1', 'nats-2', 'nats-3']);
    expect(r.stdout.trim().split('\n').filter((s) => !profiled.has(s)).sort()).toEqual(
      ['audit-log', 'contacts', 'gateway', 'identity', 'journeys', 'nats', 'postgres', 'redis'].sort(),
    );
  });

  it('has the 3-node NATS cluster as a valid profile', () => {
    if ('skip' in compose) {
      console.warn(`SKIPPED docker compose --profile nats-cluster config: ${compose.skip}`);
      return;
    }
    const r = spawnSync(compose.cmd, [...compose.args, '-f', COMPOSE_FILE, '--profile', 'nats-cluster', 'config', '--services'], { encoding: 'utf8', timeout: 30_000 });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    expect(r.stdout).toContain('nats-3');
  });
});
