import type { Attempt } from './client';
import { maxAdmittedInWindow, unexcusedFaults, type FaultWindow } from './checks';

const at = (sentAt: number, answeredAt: number, status: number, code?: string, gateway = 'gateway-a'): Attempt => ({ op: 'x', gateway, sentAt, answeredAt, status, code });

describe('soak checks', () => {
  describe('maxAdmittedInWindow', () => {
    it('counts the calls sent and answered inside one window', () => {
      const admitted = [at(0, 10, 200), at(100, 110, 200), at(900, 950, 200), at(1_200, 1_210, 200)];
      expect(maxAdmittedInWindow(admitted, 1_000)).toBe(3);
      expect(maxAdmittedInWindow(admitted, 60_000)).toBe(4);
    });

    it('leaves out a call whose answer came after the window: the server may have admitted it later', () => {
      expect(maxAdmittedInWindow([at(0, 10, 200), at(500, 1_500, 200)], 1_000)).toBe(1);
    });

    it('finds a burst anywhere in the run, across gateways', () => {
      const burst = Array.from({ length: 6 }, (_, i) => at(5_000 + i * 100, 5_050 + i * 100, 200, undefined, i % 2 ? 'gateway-b' : 'gateway-a'));
      expect(maxAdmittedInWindow([at(0, 5, 200), ...burst], 1_000)).toBe(6);
    });
  });

  describe('unexcusedFaults', () => {
    const windows: FaultWindow[] = [{ target: 'identity-a', killAt: 1_000, readyAt: 3_000 }, { target: 'gateway-b', killAt: 10_000, readyAt: 12_000 }];

    it('excuses a 503 unavailable in flight at any moment of a kill, until ready + 1 s', () => {
      const ok = [at(500, 1_000, 503, 'unavailable'), at(2_000, 9_000, 503, 'unavailable'), at(3_900, 3_950, 503, 'unavailable')];
      expect(unexcusedFaults(ok, windows)).toEqual([]);
    });

    it('refuses a 503 after the grace, a 500 inside a kill, and a 503 with another code', () => {
      const bad = [at(4_100, 4_200, 503, 'unavailable'), at(2_000, 2_100, 500, 'internal'), at(2_000, 2_100, 503, 'not_ready'), at(2_000, 2_100, 504)];
      expect(unexcusedFaults(bad, windows)).toEqual(bad);
    });

    it('excuses no answer only during a kill of that very gateway', () => {
      const cutB = at(10_500, 10_600, 0, undefined, 'gateway-b');
      const cutA = at(10_500, 10_600, 0, undefined, 'gateway-a');
      const cutDuringIdentity = at(2_000, 2_100, 0, undefined, 'gateway-a');
      expect(unexcusedFaults([cutB, cutA, cutDuringIdentity], windows)).toEqual([cutA, cutDuringIdentity]);
    });

    it('has nothing to say about 2xx and 4xx', () => {
      expect(unexcusedFaults([at(0, 1, 200), at(0, 1, 429, 'rate_limited')], [])).toEqual([]);
    });
  });
});
