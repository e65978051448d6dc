import { Logger } from '@nestjs/common';
import { DbGate, type QueueMembership } from './db-gate';

/** The membership's calls, in order. */
class Membership implements QueueMembership {
  readonly calls: string[] = [];
  leave(): void {
    this.calls.push('leave');
  }
  join(): void {
    this.calls.push('join');
  }
}

describe('DbGate', () => {
  let outcomes: Array<'ok' | 'fail' | 'hang'>;
  const probe = () => {
    const next = outcomes.shift() ?? 'ok';
    if (next === 'ok') return Promise.resolve();
    if (next === 'fail') return Promise.reject(new Error('connection refused'));
    return new Promise<never>(() => undefined);
  };
  const started: DbGate[] = [];
  const gate = (m: Membership, failuresToLeave = 2) => {
    // A long interval: the test drives the ticks itself.
    const g = new DbGate(probe, m, { everyMs: 60_000, timeoutMs: 30, failuresToLeave }).start();
    started.push(g);
    return g;
  };

  beforeAll(() => Logger.overrideLogger(false));
  afterEach(() => {
    for (const g of started.splice(0)) g.stop();
  });

  it('leaves only after failures in a row, and joins again at the first answer', async () => {
    const m = new Membership();
    const g = gate(m);
    outcomes = ['fail', 'ok', 'fail', 'fail', 'fail', 'ok', 'ok'];
    await g.tick(); // one failure: a busy moment, not an outage
    await g.tick();
    expect(m.calls).toEqual([]);
    await g.tick();
    await g.tick(); // the second in a row
    expect([m.calls, g.open]).toEqual([['leave'], false]);
    await g.tick(); // still down: no second leave
    await g.tick();
    await g.tick(); // answering: one join, not two
    expect([m.calls, g.open]).toEqual([['leave', 'join'], true]);
  });

  it('counts a probe that does not answer within its timeout as a failure', async () => {
    const m = new Membership();
    const g = gate(m, 1);
    outcomes = ['hang'];
    await g.tick();
    expect(m.calls).toEqual(['leave']);
  });

  it('does not start a probe while one is still waiting', async () => {
    const m = new Membership();
    let calls = 0;
    const g = new DbGate(
      () => {
        calls++;
        return new Promise<void>((r) => setTimeout(r, 20));
      },
      m,
      { everyMs: 60_000, timeoutMs: 1_000 },
    ).start();
    started.push(g);
    await Promise.all([g.tick(), g.tick(), g.tick()]);
    expect(calls).toBe(1);
  });

  it('once stopped (the server is closing), a probe that ends changes nothing', async () => {
    const m = new Membership();
    const g = gate(m, 1);
    outcomes = ['fail'];
    const pending = g.tick();
    g.stop();
    await pending;
    expect(m.calls).toEqual([]);
  });
});
