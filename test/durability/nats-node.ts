import { natsServerBinary, portAnswers } from '@keyway/testing';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A nats-server child process from a config file in `dir` (its store under `dir/store` unless the
 * config says otherwise), stopped politely or killed, and started again on the same ports. The
 * durability tests need what PrivateNats hides: the store directory (to copy it and put an old
 * copy back) and a cluster's config files.
 */
export class NatsNode {
  private child: ChildProcess | undefined;
  log = '';

  constructor(
    readonly dir: string,
    readonly clientPort: number,
    private readonly config: string,
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.clientPort}`;
  }

  get storeDir(): string {
    return join(this.dir, 'store');
  }

  async start(waitMs = 15_000): Promise<void> {
    const binary = natsServerBinary();
    if (!binary) throw new Error('nats-server is not installed (apt-get install nats-server)');
    const file = join(this.dir, 'nats.conf');
    writeFileSync(file, this.config);
    const child = spawn(binary, ['-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const keep = (b: Buffer) => (this.log = (this.log + b.toString()).slice(-20_000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const deadline = Date.now() + waitMs;
    while (!(await portAnswers('127.0.0.1', this.clientPort, 200))) {
      if (child.exitCode !== null) throw new Error(`nats-server exited (${child.exitCode}): ${this.log.slice(-2_000)}`);
      if (Date.now() > deadline) throw new Error(`nats-server did not start on ${this.clientPort}: ${this.log.slice(-2_000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGTERM (the store is flushed and closed: a consistent copy can be taken) or SIGKILL. */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await exited;
  }
}

/** A single JetStream server (no cluster), its store in `dir/store`. */
export const singleNodeConfig = (dir: string, port: number): string =>
  `listen: "127.0.0.1:${port}"\njetstream { store_dir: "${join(dir, 'store')}" }\n`;
