import { register } from 'prom-client';
import { fastCounter, fastHistogram } from './metrics';

describe('hot-path metrics in the Prometheus text', () => {
  afterAll(() => register.clear());

  it('a counter series bumped in place is read at scrape, one line per label set', async () => {
    const c = fastCounter('keyway_test_things_total', 'things');
    const a = c.series({ kind: 'a' });
    const b = c.series({ kind: 'b' });
    expect(c.series({ kind: 'a' })).toBe(a);
    a.n += 3;
    b.n += 1;
    const text = await register.getSingleMetricAsString('keyway_test_things_total');
    expect(text).toContain('# TYPE keyway_test_things_total counter');
    expect(text).toContain('keyway_test_things_total{kind="a"} 3');
    expect(text).toContain('keyway_test_things_total{kind="b"} 1');
  });

  it('a histogram series gives cumulative buckets, +Inf, sum and count as prom-client does', async () => {
    const h = fastHistogram('keyway_test_seconds', 'seconds', [0.1, 1]);
    const s = h.series({ route: '/x' });
    for (const v of [0.05, 0.1, 0.5, 2]) s.observe(v);
    h.series({ route: '/never' });
    const text = await register.getSingleMetricAsString('keyway_test_seconds');
    expect(text.split('\n').filter((l) => !l.startsWith('#'))).toEqual([
      'keyway_test_seconds_bucket{route="/x",le="0.1"} 2',
      'keyway_test_seconds_bucket{route="/x",le="1"} 3',
      'keyway_test_seconds_bucket{route="/x",le="+Inf"} 4',
      'keyway_test_seconds_sum{route="/x"} 2.65',
      'keyway_test_seconds_count{route="/x"} 4',
    ]);
  });

  it('asking twice for a name gives the same metric (two gateways in one process)', () => {
    expect(fastCounter('keyway_test_things_total', 'things')).toBe(fastCounter('keyway_test_things_total', 'other help'));
  });
});
