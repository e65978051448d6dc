import { connect, createServer, type Server, type Socket } from 'node:net';
import type { RateLimitWindow } from '@keyway/contracts';
import { msUntilReset } from './windows';

/**
 * Test helper: waits until the current `window` has at least `marginMs` left, so a burst of calls
 * cannot straddle a clock-aligned boundary (which would legitimately admit a second allowance).
 */
export async function awayFromBoundary(window: RateLimitWindow, marginMs: number): Promise<void> {
  const left = msUntilReset(Date.now(), window);
  if (left < marginMs) await new Promise((r) => setTimeout(r, left + 5));
}

/** Test helper: a logger that records what it was told. */
export function recordingLogger(): { warn: (m: string) => void; log: (m: string) => void; lines: Array<[string, string]> } {
  const lines: Array<[string, string]> = [];
  return { lines, warn: (m) => void lines.push(['warn', m]), log: (m) => void lines.push(['log', m]) };
}

/**
 * Test helper: a TCP proxy in front of Redis that can stop answering while keeping the connection
 * open, which is what a hung Redis looks like (CLIENT PAUSE would pause every other user of the
 * shared server too).
 */
export class HangingProxy {
  private hung = false;
  private readonly sockets = new Set<Socket>();
  private constructor(private readonly server: Server, readonly port: number) {}

  static async start(target: { host: string; port: number }): Promise<HangingProxy> {
    let proxy: HangingProxy | undefined;
    const server = createServer((client) => {
      const upstream = connect(target.port, target.host);
      proxy?.sockets.add(client).add(upstream);
      // While hung, bytes wait here (TCP never drops them): like a Redis busy for a while.
      const relay = (to: Socket) => (chunk: Buffer) => {
        if (proxy?.hung) proxy.held.push(() => to.write(chunk));
        else to.write(chunk);
      };
      client.on('data', relay(upstream));
      upstream.on('data', relay(client));
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    proxy = new HangingProxy(server, typeof address === 'object' && address ? address.port : 0);
    return proxy;
  }

  private readonly held: Array<() => void> = [];

  /** Holds every byte both ways: commands get no reply until `resume()`. */
  hang(): void {
    this.hung = true;
  }

  resume(): void {
    this.hung = false;
    for (const send of this.held.splice(0)) send();
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}
