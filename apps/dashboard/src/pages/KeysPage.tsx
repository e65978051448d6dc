import { infiniteQueryOptions, useInfiniteQuery, type QueryClient } from '@tanstack/react-query';
import { lazy, Suspense, useMemo, useState, type MouseEvent } from 'react';
import { Button } from 'react-aria-components';
import { api, type Environment, type KeyView } from '../api';
import { ErrorNote, Spinner, StatusBadge } from '../components/ui';
import { day, when } from '../format';
import { href, navigate } from '../router';
import { useCan } from '../session';

/** The create dialog (the key form, react-aria's overlays) loads when first opened, not with the list. */
const CreateKey = lazy(() => import('./CreateKey').then((m) => ({ default: m.CreateKey })));

/**
 * A key's name in the list: a plain link the app routes itself (a modified or middle click opens a
 * tab as usual). Not react-aria's Link: 50 rows of its press and hover hooks were a good part of
 * the first render.
 */
function openInApp(e: MouseEvent<HTMLAnchorElement>): void {
  if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  navigate(e.currentTarget.pathname + e.currentTarget.search);
}

type SortKey = 'name' | 'created_at' | 'last_used_at' | 'expires_at';
type StatusFilter = 'all' | KeyView['status'];

const keysKey = (mode: Environment) => ['keys', mode] as const;

/** Every page of keys through `next_cursor` (50 a page, the most the API gives). */
const keysQuery = (mode: Environment) =>
  infiniteQueryOptions({
    queryKey: keysKey(mode),
    queryFn: ({ pageParam }) => api(mode).GET('/v1/keys', { params: { query: { pageSize: 50, ...(pageParam !== null && { after: pageParam }) } } }),
    initialPageParam: null as string | null,
    getNextPageParam: (last: { next_cursor: string | null }) => last.next_cursor,
  });

/**
 * The first page of live keys, asked at boot beside `GET /auth/v1/session` rather than after it:
 * the list is the page most loads show, and one round trip less is most of its time to show.
 * Without a session it answers 401, which changes nothing (sign-in shows either way).
 */
export async function prefetchKeys(queryClient: QueryClient): Promise<void> {
  if (window.location.pathname.replace(/\/+$/, '').endsWith('/dashboard')) await queryClient.prefetchInfiniteQuery(keysQuery('live'));
}

const compare = (a: KeyView, b: KeyView, key: SortKey): number => {
  if (key === 'name') return a.name.localeCompare(b.name);
  // Never used / never expires sort last when ascending.
  const x = a[key] ?? '\uffff';
  const y = b[key] ?? '\uffff';
  return x < y ? -1 : x > y ? 1 : 0;
};

/** Settings → API access: every key of the mode, sortable and filterable by status. */
export function KeysPage() {
  const canWrite = useCan('keys:write');
  const [mode, setMode] = useState<Environment>('live');
  const [status, setStatus] = useState<StatusFilter>('all');
  const [sort, setSort] = useState<{ key: SortKey; dir: 1 | -1 }>({ key: 'created_at', dir: -1 });
  const [creating, setCreating] = useState(false);
  const keys = useInfiniteQuery(keysQuery(mode));

  const all = useMemo(() => keys.data?.pages.flatMap((p) => p.data) ?? [], [keys.data]);
  const rows = useMemo(() => all.filter((k) => status === 'all' || k.status === status).sort((a, b) => sort.dir * compare(a, b, sort.key)), [all, status, sort]);
  const total = keys.data?.pages[0]?.total;

  const header = (key: SortKey, label: string) => {
    const active = sort.key === key;
    return (
      <th scope="col" aria-sort={active ? (sort.dir === 1 ? 'ascending' : 'descending') : 'none'}>
        <button type="button" className="sort" onClick={() => setSort({ key, dir: active ? (sort.dir === 1 ? -1 : 1) : key === 'name' ? 1 : -1 })}>
          {label}
          <span aria-hidden="true">{active ? (sort.dir === 1 ? ' ▲' : ' ▼') : ''}</span>
        </button>
      </th>
    );
  };

  return (
    <section aria-labelledby="keys-title">
      <div className="page-head">
        <h1 id="keys-title">API access</h1>
        {canWrite && (
          <Button className="button primary" onPress={() => setCreating(true)}>
            Create key
          </Button>
        )}
      </div>
      <p className="muted">Keys let your backend call the Keyway API. Only a key’s prefix is shown here: its secret is shown once, when it is created or regenerated.</p>

      <div className="filters">
        <div className="field inline">
          <label htmlFor="keys-mode">Environment</label>
          <select id="keys-mode" value={mode} onChange={(e) => setMode(e.target.value as Environment)}>
            <option value="live">Live</option>
            <option value="test">Test</option>
          </select>
        </div>
        <div className="field inline">
          <label htmlFor="keys-status">Status</label>
          <select id="keys-status" value={status} onChange={(e) => setStatus(e.target.value as StatusFilter)}>
            <option value="all">All</option>
            <option value="active">Active</option>
            <option value="disabled">Disabled</option>
            <option value="expired">Expired</option>
            <option value="revoked">Revoked</option>
          </select>
        </div>
      </div>

      <ErrorNote error={keys.error} />
      {keys.isPending ? (
        <Spinner label="Loading keys…" />
      ) : all.length === 0 && !keys.isError ? (
        <div className="empty">
          <h2>No {mode} API keys yet</h2>
          <p>{canWrite ? 'Select “Create key” above, choose what the key may do, and copy its secret: it is shown only once.' : 'Ask an admin or a developer of your workspace to create one: your role can only read keys.'}</p>
        </div>
      ) : (
        <>
          <div className="table-wrap" role="region" aria-labelledby="keys-caption" tabIndex={0}>
            <table className="keys">
              <caption id="keys-caption">
                {rows.length} of {total ?? all.length} {mode} keys{status !== 'all' ? ` (${status})` : ''}
              </caption>
              <thead>
                <tr>
                  {header('name', 'Name')}
                  <th scope="col">Prefix</th>
                  <th scope="col">Environment</th>
                  <th scope="col">Scopes</th>
                  <th scope="col">Status</th>
                  {header('created_at', 'Created')}
                  {header('expires_at', 'Expires')}
                  {header('last_used_at', 'Last used')}
                </tr>
              </thead>
              <tbody>
                {rows.map((k) => (
                  <tr key={k.id}>
                    <td>
                      <a href={href(`/keys/${k.id}?mode=${mode}`)} onClick={openInApp}>
                        {k.name}
                      </a>
                    </td>
                    <td>
                      <code>{k.prefix}</code>
                    </td>
                    <td>{k.environment === 'live' ? 'Live' : 'Test'}</td>
                    <td className="scopes">{k.scopes.length === 0 ? <span className="muted">None</span> : k.scopes.join(', ')}</td>
                    <td>
                      <StatusBadge status={k.status} />
                    </td>
                    <td>{day(k.created_at)}</td>
                    <td>{day(k.expires_at, 'Never')}</td>
                    <td>{when(k.last_used_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {keys.hasNextPage && (
            <Button className="button" onPress={() => void keys.fetchNextPage()} isDisabled={keys.isFetchingNextPage}>
              {keys.isFetchingNextPage ? 'Loading…' : 'Load more keys'}
            </Button>
          )}
        </>
      )}

      {creating && (
        <Suspense fallback={<Spinner />}>
          <CreateKey mode={mode} onDone={() => setCreating(false)} />
        </Suspense>
      )}
    </section>
  );
}
