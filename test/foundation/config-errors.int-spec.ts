import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A bad configuration value must stop a service at boot with a message that names the variable,
 * instead of a stack trace or a service that starts and misbehaves. Runs the built services
 * (`npm test` builds before jest), the way an operator would start them.
 */
const ROOT = join(__dirname, '..', '..');
const APPS = ['contacts', 'identity', 'journeys', 'audit-log', 'gateway'];
const appsPresent = APPS.filter((app) => existsSync(join(ROOT, 'apps', app, 'src', 'main.ts')));

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

function runApp(app: string, env: Record<string, string>): Promise<Exit> {
  const main = join(ROOT, 'apps', app, 'dist', 'main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: build first (npm run build)`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [main], {
      cwd: ROOT,
      // Everything else valid and pointing nowhere reachable: only the bad value may stop it.
      env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'silent', HEALTH_PORT: '0', PORT: '0', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    // A service that accepted the value would run forever: stop it and let the test fail.
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr });
    });
  });
}

describe.each(appsPresent)('%s with a bad configuration value', (app) => {
  it.each([
    ['NATS_URL', 'http://nope'],
    ['HEALTH_PORT', 'abc'],
  ])('stops when %s=%s and names the variable', async (name, value) => {
    const exit = await runApp(app, { [name]: value });
    expect(exit.signal).toBeNull();
    expect(exit.code).not.toBe(0);
    expect(exit.stderr).toContain(name);
    // A clear message, not a crash: no stack trace.
    expect(exit.stderr).not.toMatch(/\n\s+at /);
  });
});

it('finds the contacts service to test', () => {
  expect(appsPresent).toContain('contacts');
});
