import { useInfiniteQuery, useQuery } from '@tanstack/react-query';
import { Button } from 'react-aria-components';
import { api, type AuditEntry, type Environment } from '../api';
import { ErrorNote, Spinner } from '../components/ui';
import { when } from '../format';

const WHAT: Record<AuditEntry['type'], string> = {
  created: 'Created the key',
  updated: 'Changed the key',
  enabled: 'Switched the key on',
  disabled: 'Switched the key off',
  rotated: 'Regenerated the secret',
  rotation_completed: 'Ended the grace period of the previous secret',
  revoked: 'Revoked the key',
  expired: 'The key expired',
  used: 'Used the key',
  // Member entries never name a key, so a key's logs do not show them; the labels keep the table whole.
  'member.created': 'Added a member',
  'member.updated': 'Changed a member',
  'member.deleted': 'Removed a member',
  'member.signed_in': 'Signed in',
  'member.sign_in_failed': 'Failed to sign in',
  // Spread: accepted whether or not the SDK in hand lists the tenant entries yet (no excess-property check).
  ...{ 'tenant.updated': 'An operator changed the tenant' },
};

/** The members' names, to say who did what (every role may read members). */
function useMemberNames(): Map<string, string> {
  const users = useQuery({ queryKey: ['members'], queryFn: () => api().GET('/v1/users', { params: { query: { pageSize: 50 } } }) });
  return new Map((users.data?.data ?? []).map((u) => [u.id, `${u.name} (${u.email})`]));
}

function who(actor: AuditEntry['actor'], names: Map<string, string>): string {
  switch (actor.type) {
    case 'member':
    case 'user':
      return names.get(actor.id) ?? `Member ${actor.id}`;
    case 'key':
      return `API key ${actor.id}`;
    case 'operator':
      return 'Keyway operator';
    case 'system':
      return 'Keyway';
  }
}

function details(e: AuditEntry): string {
  const fields = Object.keys(e.changes).filter((f) => f !== 'enabled');
  if (e.type === 'updated' && fields.length > 0) return `Changed: ${fields.join(', ').replaceAll('_', ' ')}`;
  if (e.type === 'rotated') return `New prefix ${e.prefix}`;
  return '';
}

/** The key's audit trail, newest first: who did what, and when. */
export function KeyLogs({ id, mode }: { id: string; mode: Environment }) {
  const names = useMemberNames();
  const logs = useInfiniteQuery({
    queryKey: ['keys', mode, 'logs', id],
    queryFn: ({ pageParam }) => api(mode).GET('/v1/keys/{id}/logs', { params: { path: { id }, query: { pageSize: 50, ...(pageParam !== null && { after: pageParam }) } } }),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
  });
  if (logs.isPending) return <Spinner label="Loading the logs…" />;
  const entries = logs.data?.pages.flatMap((p) => p.data) ?? [];
  return (
    <>
      <ErrorNote error={logs.error} />
      {entries.length === 0 && !logs.isError ? (
        <p className="muted">Nothing has happened to this key yet.</p>
      ) : (
        <div className="table-wrap" role="region" aria-label="Key logs" tabIndex={0}>
          <table className="logs">
            <caption className="visually-hidden">The key’s history, newest first</caption>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Who</th>
                <th scope="col">What</th>
                <th scope="col">Details</th>
              </tr>
            </thead>
            <tbody>
              {entries.map((e) => (
                <tr key={e.id}>
                  <td>{when(e.occurred_at)}</td>
                  <td>{who(e.actor, names)}</td>
                  <td>{WHAT[e.type]}</td>
                  <td>{details(e)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <div className="actions">
        <Button className="button" onPress={() => void logs.refetch()} isDisabled={logs.isFetching}>
          Refresh
        </Button>
        {logs.hasNextPage && (
          <Button className="button" onPress={() => void logs.fetchNextPage()} isDisabled={logs.isFetchingNextPage}>
            Older entries
          </Button>
        )}
      </div>
    </>
  );
}
