import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, portAnswers } from './ports';

const NATS_BINARIES = [process.env.NATS_SERVER_BIN, '/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'];
export const natsServerBinary = (): string | undefined => NATS_BINARIES.find((p): p is string => !!p && existsSync(p));

export interface PrivateNatsOptions {
  /**
   * Server configuration included as is (e.g. infra/nats/auth.conf's `authorization` block); the
   * address, JetStream and the store still come from the command line.
   */
  config?: string;
  /** Files written beside the config, for its `include`s (which resolve relative to it): name → content. */
  files?: Record<string, string>;
  /** The server's environment: the `$VAR`s the config refers to (NATS_PASSWORD_<USER>). */
  env?: Record<string, string>;
  /** Keep the server's log (read it with `log()`): permission violations are logged there. */
  log?: boolean;
}

/** A private nats-server with JetStream: its own port and store, stoppable and restartable. */
export class PrivateNats {
  private child: ChildProcess | undefined;
  private readonly storeDir = mkdtempSync(join(tmpdir(), 'keyway-nats-'));
  private constructor(
    readonly port: number,
    private readonly binary: string,
    private readonly options: PrivateNatsOptions = {},
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** The server's process id while it runs (benches read its CPU time). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  static async start(options: PrivateNatsOptions = {}): Promise<PrivateNats> {
    const binary = natsServerBinary();
    if (!binary) throw new Error('nats-server is not installed (apt-get install nats-server)');
    const nats = new PrivateNats(await freePort(), binary, options);
    await nats.startProcess();
    return nats;
  }

  async startProcess(): Promise<void> {
    const args = ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.storeDir];
    if (this.options.log) args.push('-l', this.logFile);
    if (this.options.config !== undefined) {
      // Beside the store, so an `include` in it resolves there too.
      const file = join(this.storeDir, 'server.conf');
      writeFileSync(file, this.options.config);
      for (const [name, content] of Object.entries(this.options.files ?? {})) writeFileSync(join(this.storeDir, name), content);
      args.unshift('-c', file);
    }
    this.child = spawn(this.binary, args, {
      stdio: 'ignore',
      env: this.options.env ? { PATH: process.env.PATH ?? '', ...this.options.env } : process.env,
    });
    const deadline = Date.now() + 10_000;
    while (!(await portAnswers('127.0.0.1', this.port, 200))) {
      if (Date.now() > deadline) throw new Error(`nats-server did not start on ${this.port}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private get logFile(): string {
    return join(this.storeDir, 'server.log');
  }

  /** What the server logged so far (with `log: true`). */
  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  /** SIGKILL, like a crash: nothing is flushed politely. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.startProcess();
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}

/** A private nats-server locked down by an auth config (infra/nats/auth.conf), with a fresh password per user. */
export interface LockedNats {
  nats: PrivateNats;
  url: string;
  password(user: string): string;
  /** What a process connecting as `user` is given (runtime's natsConnectionOptions reads it). */
  env(user: string): Record<string, string>;
  stop(): Promise<void>;
}

export async function startLockedNats(authConf: string): Promise<LockedNats> {
  const vars = [...new Set([...authConf.matchAll(/\$(NATS_PASSWORD_[A-Z0-9_]+)/g)].map((m) => m[1]!))];
  const env = Object.fromEntries(vars.map((v) => [v, `pw${randomBytes(18).toString('hex')}`]));
  const nats = await PrivateNats.start({ config: 'include auth.conf\n', files: { 'auth.conf': authConf }, env, log: true });
  const password = (user: string): string => {
    const v = env[`NATS_PASSWORD_${user.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`];
    if (v === undefined) throw new Error(`no NATS user ${user} in the auth config`);
    return v;
  };
  return {
    nats,
    url: nats.url,
    password,
    env: (user) => ({ NATS_URL: nats.url, NATS_USER: user, NATS_PASSWORD: password(user) }),
    stop: () => nats.stop(),
  };
}
