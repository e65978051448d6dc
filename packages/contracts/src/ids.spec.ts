import { idPattern, newId, randomLowerAlnum } from './ids';

describe('ids', () => {
  it('are unique and well-formed across many refills of the random pool', () => {
    // 20,000 ids take about 100 refills of the 4 KiB pool.
    const ids = Array.from({ length: 20_000 }, () => newId('key'));
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(idPattern('key'));
  });

  it('draws every base36 character equally often (rejection sampling, no modulo bias)', () => {
    const counts = new Map<string, number>();
    const text = Array.from({ length: 10_000 }, () => randomLowerAlnum(20)).join('');
    for (const c of text) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(36);
    const expected = text.length / 36; // ≈ 5,556; one standard deviation is ≈ 73
    for (const n of counts.values()) expect(Math.abs(n - expected) / expected).toBeLessThan(0.08);
  });

  it('gives any length asked for', () => {
    for (const n of [1, 8, 20, 40, 5_000]) expect(randomLowerAlnum(n)).toMatch(new RegExp(`^[0-9a-z]{${n}}$`));
  });
});
