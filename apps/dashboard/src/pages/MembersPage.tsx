import { ROLES, type Role } from '@keyway/contracts';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { Button } from 'react-aria-components';
import { api, type UserView } from '../api';
import { ModalDialog } from '../components/ModalDialog';
import { ErrorNote, Spinner } from '../components/ui';
import { day } from '../format';
import { useSession } from '../session';

const ROLE_WORDS: Record<Role, string> = {
  admin: 'Admin: everything, members included',
  developer: 'Developer: keys and data, not members',
  viewer: 'Viewer: read only',
};

/** Members (admins only): add with a role, change a role, remove. */
export function MembersPage() {
  const me = useSession();
  const queryClient = useQueryClient();
  const members = useQuery({ queryKey: ['members'], queryFn: () => api().GET('/v1/users', { params: { query: { pageSize: 50 } } }) });
  const [adding, setAdding] = useState(false);
  const [removing, setRemoving] = useState<UserView | null>(null);
  const [error, setError] = useState<unknown>(null);
  const refresh = () => queryClient.invalidateQueries({ queryKey: ['members'] });

  const changeRole = async (u: UserView, role: Role) => {
    setError(null);
    try {
      await api().PATCH('/v1/users/{id}', { params: { path: { id: u.id } }, body: { role } });
    } catch (err) {
      setError(err);
    }
    await refresh();
  };

  return (
    <section aria-labelledby="members-title">
      <div className="page-head">
        <h1 id="members-title">Members</h1>
        <Button className="button primary" onPress={() => setAdding(true)}>
          Add member
        </Button>
      </div>
      <p className="muted">A workspace always keeps at least one admin.</p>
      <ErrorNote error={error ?? members.error} />
      {members.isPending ? (
        <Spinner label="Loading members…" />
      ) : (
        <div className="table-wrap" role="region" aria-label="Members" tabIndex={0}>
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Email</th>
                <th scope="col">Role</th>
                <th scope="col">Added</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {(members.data?.data ?? []).map((u) => (
                <tr key={u.id}>
                  <td>
                    {u.name}
                    {u.id === me.member.id ? ' (you)' : ''}
                  </td>
                  <td>{u.email}</td>
                  <td>
                    <select aria-label={`Role of ${u.name}`} value={u.role} onChange={(e) => void changeRole(u, e.target.value as Role)}>
                      {ROLES.map((r) => (
                        <option key={r} value={r}>
                          {r[0]!.toUpperCase() + r.slice(1)}
                        </option>
                      ))}
                    </select>
                  </td>
                  <td>{day(u.created_at)}</td>
                  <td>
                    <Button className="button danger small" onPress={() => setRemoving(u)} aria-label={`Remove ${u.name}`}>
                      Remove
                    </Button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {adding && <AddMember onDone={() => setAdding(false)} />}
      {removing && <RemoveMember member={removing} onDone={() => setRemoving(null)} />}
    </section>
  );
}

function AddMember({ onDone }: { onDone: () => void }) {
  const queryClient = useQueryClient();
  const [form, setForm] = useState({ name: '', email: '', password: '', role: 'developer' as Role });
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setPending(true);
    setError(null);
    try {
      await api().POST('/v1/users', { body: form });
      await queryClient.invalidateQueries({ queryKey: ['members'] });
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setPending(false);
    }
  };
  return (
    <ModalDialog title="Add a member" onClose={onDone}>
      <form className="form" onSubmit={(e) => void submit(e)}>
        <div className="field">
          <label htmlFor="member-name">Name</label>
          <input id="member-name" required value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} autoComplete="off" />
        </div>
        <div className="field">
          <label htmlFor="member-email">Email</label>
          <input id="member-email" type="email" required value={form.email} onChange={(e) => setForm({ ...form, email: e.target.value })} autoComplete="off" />
        </div>
        <div className="field">
          <label htmlFor="member-password">Password</label>
          <input id="member-password" type="password" required minLength={8} value={form.password} onChange={(e) => setForm({ ...form, password: e.target.value })} autoComplete="new-password" aria-describedby="member-password-hint" />
          <span id="member-password-hint" className="hint">
            At least 8 characters. Share it with them safely; they can change it.
          </span>
        </div>
        <fieldset>
          <legend>Role</legend>
          {ROLES.map((r) => (
            <label key={r} className="radio">
              <input type="radio" name="member-role" value={r} checked={form.role === r} onChange={() => setForm({ ...form, role: r })} />
              {ROLE_WORDS[r]}
            </label>
          ))}
        </fieldset>
        <ErrorNote error={error} />
        <div className="actions">
          <Button type="submit" className="button primary" isDisabled={pending}>
            Add member
          </Button>
          <Button className="button" onPress={onDone}>
            Cancel
          </Button>
        </div>
      </form>
    </ModalDialog>
  );
}

function RemoveMember({ member, onDone }: { member: UserView; onDone: () => void }) {
  const queryClient = useQueryClient();
  const [error, setError] = useState<unknown>(null);
  const remove = async () => {
    setError(null);
    try {
      await api().DELETE('/v1/users/{id}', { params: { path: { id: member.id } } });
      await queryClient.invalidateQueries({ queryKey: ['members'] });
      onDone();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <ModalDialog title={`Remove ${member.name}?`} onClose={onDone} role="alertdialog">
      <p>{member.email} loses access at once: their sessions stop working on their next request.</p>
      <ErrorNote error={error} />
      <div className="actions">
        <Button className="button danger" onPress={() => void remove()}>
          Remove
        </Button>
        <Button className="button" onPress={onDone}>
          Cancel
        </Button>
      </div>
    </ModalDialog>
  );
}
