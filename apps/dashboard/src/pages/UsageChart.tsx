import { useQuery } from '@tanstack/react-query';
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { api, type Environment } from '../api';
import { ErrorNote, Spinner } from '../components/ui';
import { count } from '../format';

const HOUR = 3_600_000;

/**
 * Requests per hour over the last 7 days, the rate-limited ones apart. uPlot draws on a canvas and
 * styles its elements through the CSSOM (allowed under `style-src 'self'`, unlike style
 * attributes); its stylesheet is a static file of the build. The figures are also in a table for
 * screen readers.
 */
export default function UsageChart({ id, mode }: { id: string; mode: Environment }) {
  const usage = useQuery({
    queryKey: ['keys', mode, 'usage', id],
    queryFn: () => {
      const to = new Date(Math.ceil(Date.now() / HOUR) * HOUR);
      const from = new Date(to.getTime() - 7 * 24 * HOUR);
      return api(mode).GET('/v1/keys/{id}/usage', { params: { path: { id }, query: { interval: 'hour', from: from.toISOString(), to: to.toISOString() } } });
    },
  });
  const buckets = usage.data?.data ?? [];
  const total = buckets.reduce((n, b) => n + b.requests, 0);
  const limited = buckets.reduce((n, b) => n + b.rate_limited, 0);

  if (usage.isPending) return <Spinner label="Loading usage…" />;
  if (usage.isError) return <ErrorNote error={usage.error} />;
  if (total === 0) return <p className="muted">No data: this key has made no requests in the last 7 days.</p>;
  return (
    <figure className="usage">
      <figcaption>
        Requests per hour, last 7 days: {count(total)} in all, {count(limited)} rate-limited.
      </figcaption>
      <Chart buckets={buckets} />
      <details>
        <summary>Show the figures</summary>
        <table>
          <thead>
            <tr>
              <th scope="col">Hour</th>
              <th scope="col">Accepted</th>
              <th scope="col">Rate-limited</th>
            </tr>
          </thead>
          <tbody>
            {buckets
              .filter((b) => b.requests > 0)
              .map((b) => (
                <tr key={b.start}>
                  <td>{new Date(b.start).toLocaleString()}</td>
                  <td>{count(b.requests - b.rate_limited)}</td>
                  <td>{count(b.rate_limited)}</td>
                </tr>
              ))}
          </tbody>
        </table>
      </details>
    </figure>
  );
}

function Chart({ buckets }: { buckets: { start: string; requests: number; rate_limited: number }[] }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (el === null) return;
    const data: uPlot.AlignedData = [buckets.map((b) => Date.parse(b.start) / 1000), buckets.map((b) => b.requests - b.rate_limited), buckets.map((b) => b.rate_limited)];
    const width = () => Math.max(280, el.clientWidth);
    const plot = new uPlot(
      {
        width: width(),
        height: 260,
        series: [{}, { label: 'Accepted', stroke: '#1d4ed8', fill: 'rgba(29, 78, 216, 0.15)' }, { label: 'Rate-limited', stroke: '#b91c1c', fill: 'rgba(185, 28, 28, 0.2)' }],
        axes: [{}, { label: 'Requests' }],
      },
      data,
      el,
    );
    const resize = new ResizeObserver(() => plot.setSize({ width: width(), height: 260 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [buckets]);
  return <div ref={box} className="chart" role="img" aria-label="Chart of accepted and rate-limited requests per hour" />;
}
