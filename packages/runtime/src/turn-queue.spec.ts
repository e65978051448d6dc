import { TurnQueue } from './turn-queue';

describe('TurnQueue', () => {
  it('runs the jobs of a turn together after the I/O phase, in order, and a failing one stops none', async () => {
    const errors: unknown[] = [];
    const q = new TurnQueue((err) => errors.push(err));
    const ran: string[] = [];
    q.push(() => ran.push('a'));
    q.push(() => {
      throw new Error('boom');
    });
    q.push(() => ran.push('c'));
    await Promise.resolve();
    expect(ran).toEqual([]); // not in a microtask: at the turn's end
    await new Promise((r) => setImmediate(r));
    expect(ran).toEqual(['a', 'c']);
    expect(errors).toHaveLength(1);
    q.push(() => ran.push('d'));
    await new Promise((r) => setImmediate(r));
    expect(ran).toEqual(['a', 'c', 'd']);
  });
});
