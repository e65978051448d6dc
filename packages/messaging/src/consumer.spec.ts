import { nakDelay } from './consumer';

describe('nakDelay', () => {
  const b = { nakDelayMs: 1_000, maxNakDelayMs: 60_000, backoffFactor: 2 };

  it('starts at nakDelayMs after the first delivery and doubles with each one after', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => nakDelay(n, b))).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000]);
  });

  it('stays at the cap however often a message was delivered', () => {
    expect(nakDelay(100, b)).toBe(60_000);
    expect(nakDelay(10_000, b)).toBe(60_000); // 2 ** 9999 is Infinity: still the cap
  });

  it('is constant with a factor of 1, and never above the cap even when the first delay is', () => {
    expect([1, 5, 9].map((n) => nakDelay(n, { ...b, backoffFactor: 1 }))).toEqual([1_000, 1_000, 1_000]);
    expect(nakDelay(1, { ...b, nakDelayMs: 90_000 })).toBe(60_000);
  });

  it('treats a delivery count below 1 as the first delivery', () => {
    expect(nakDelay(0, b)).toBe(1_000);
  });
});
