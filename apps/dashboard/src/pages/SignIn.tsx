import { useState, type FormEvent } from 'react';
import { Button } from 'react-aria-components';
import { isKeywayError } from '@keyway/sdk';
import { api } from '../api';
import { ErrorNote } from '../components/ui';
import { useSessionApi } from '../session';

interface TenantChoice {
  id: string;
  name: string;
}

/**
 * Email and password; when they match members of several workspaces (409 tenant_required), the
 * workspace to sign in to. The page behind stays where it was: sign-in never navigates.
 */
export function SignInForm({ email: knownEmail = '' }: { email?: string }) {
  const { signedIn } = useSessionApi();
  const [email, setEmail] = useState(knownEmail);
  const [password, setPassword] = useState('');
  const [tenants, setTenants] = useState<TenantChoice[] | null>(null);
  const [tenantId, setTenantId] = useState<string>('');
  const [error, setError] = useState<unknown>(null);
  const [pending, setPending] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setPending(true);
    setError(null);
    try {
      const body = { email, password, ...(tenants !== null && tenantId !== '' && { tenant_id: tenantId }) };
      const s = await api().POST('/auth/v1/session', { body });
      setPassword('');
      signedIn(s);
    } catch (err) {
      if (isKeywayError(err, 'tenant_required') && Array.isArray(err.body['tenants'])) {
        const list = err.body['tenants'] as TenantChoice[];
        setTenants(list);
        setTenantId(list[0]?.id ?? '');
      }
      setError(err);
    } finally {
      setPending(false);
    }
  };

  return (
    <form className="form" onSubmit={(e) => void submit(e)}>
      <div className="field">
        <label htmlFor="signin-email">Email</label>
        <input id="signin-email" type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
      </div>
      <div className="field">
        <label htmlFor="signin-password">Password</label>
        <input id="signin-password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
      </div>
      {tenants !== null && (
        <fieldset>
          <legend>Workspace</legend>
          {tenants.map((t) => (
            <label key={t.id} className="radio">
              <input type="radio" name="signin-tenant" value={t.id} checked={tenantId === t.id} onChange={() => setTenantId(t.id)} />
              {t.name}
            </label>
          ))}
        </fieldset>
      )}
      <ErrorNote error={isKeywayError(error, 'tenant_required') ? null : error} />
      {tenants !== null && <p className="muted">Your email belongs to more than one workspace: choose one, then sign in.</p>}
      <Button type="submit" className="button primary" isDisabled={pending}>
        Sign in
      </Button>
    </form>
  );
}
