import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { freePort } from './ports';

export const REPO_ROOT = resolve(__dirname, '../../..');

/** The built entry point of an app; builds it (and its packages) once if it is missing. */
function appEntry(app: string): string {
  const entry = join(REPO_ROOT, 'apps', app, 'dist', 'main.js');
  if (!existsSync(entry)) {
    execFileSync('npx', ['turbo', 'run', 'build', `--filter=@keyway/${app}...`], {
      cwd: REPO_ROOT,
      stdio: 'ignore',
      env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' },
    });
  }
  return entry;
}

/**
 * A service as a real child process, as an operator runs it: killable with SIGKILL, its output
 * kept (tests search it, e.g. for a leaked secret).
 */
export class ServiceProcess {
  output = '';
  private child: ChildProcess | undefined;
  healthPort = 0;
  /** The gateway's operator listener (ADMIN_PORT), picked free at each start; 0 for the other apps. */
  adminPort = 0;

  constructor(
    readonly app: string,
    private readonly env: Record<string, string>,
  ) {}

  async start(): Promise<void> {
    this.healthPort = await freePort();
    if (this.app === 'gateway') this.adminPort = await freePort();
    const port = this.app === 'gateway' ? { PORT: String(this.healthPort), ADMIN_PORT: String(this.adminPort) } : { HEALTH_PORT: String(this.healthPort) };
    const child = spawn(process.execPath, [appEntry(this.app)], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', ...this.env, ...port },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    await this.waitReady(30_000);
  }

  get url(): string {
    return `http://127.0.0.1:${this.healthPort}`;
  }

  /** The gateway's operator listener: `/admin/v1`, `/metrics` (a gateway answers /admin/v1 only here). */
  get adminUrl(): string {
    if (this.app !== 'gateway') throw new Error(`${this.app} has no admin listener`);
    return `http://127.0.0.1:${this.adminPort}`;
  }

  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.child?.exitCode !== null && this.child?.exitCode !== undefined) {
        throw new Error(`${this.app} exited with ${this.child.exitCode}:\n${this.output.slice(-2_000)}`);
      }
      try {
        const res = await fetch(`${this.url}/health/ready`);
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`${this.app} not ready in ${timeoutMs} ms:\n${this.output.slice(-2_000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await exited;
  }
}
