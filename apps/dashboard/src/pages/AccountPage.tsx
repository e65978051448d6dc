import { isKeywayError } from '@keyway/sdk';
import { useState, type FormEvent } from 'react';
import { Button } from 'react-aria-components';
import { api } from '../api';
import { ErrorNote } from '../components/ui';
import { useSession } from '../session';

/**
 * The signed-in member's own account: who they are, and "Change password" (`POST
 * /auth/v1/password`, any role). The passwords live in this form's state only and are cleared once
 * sent, whatever the answer.
 */
export function AccountPage() {
  const session = useSession();
  return (
    <section aria-labelledby="account-title">
      <h1 id="account-title">Your account</h1>
      <p>
        {session.member.name} ({session.member.email}) · {session.tenant.name} · <span className="role">{session.role}</span>
      </p>
      <ChangePassword />
    </section>
  );
}

function ChangePassword() {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [mismatch, setMismatch] = useState(false);
  const [done, setDone] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setDone(false);
    setError(null);
    setMismatch(next !== again);
    if (next !== again) return;
    setPending(true);
    try {
      await api().POST('/auth/v1/password', { body: { current_password: current, new_password: next } });
      setDone(true);
    } catch (err) {
      setError(err);
    } finally {
      setCurrent('');
      setNext('');
      setAgain('');
      setPending(false);
    }
  };

  return (
    <form className="form" aria-labelledby="password-title" onSubmit={(e) => void submit(e)}>
      <h2 id="password-title">Change password</h2>
      <div className="field">
        <label htmlFor="password-current">Current password</label>
        <input id="password-current" type="password" autoComplete="current-password" required value={current} onChange={(e) => setCurrent(e.target.value)} />
      </div>
      <div className="field">
        <label htmlFor="password-new">New password</label>
        <input id="password-new" type="password" autoComplete="new-password" required minLength={8} maxLength={1024} aria-describedby="password-rule" value={next} onChange={(e) => setNext(e.target.value)} />
        <p id="password-rule" className="muted">
          At least 8 characters.
        </p>
      </div>
      <div className="field">
        <label htmlFor="password-again">New password again</label>
        <input id="password-again" type="password" autoComplete="new-password" required value={again} onChange={(e) => setAgain(e.target.value)} />
      </div>
      {mismatch && (
        <p role="alert" className="error">
          The two new passwords are not the same.
        </p>
      )}
      {/* 403 here means one thing: the current password was not right. */}
      {isKeywayError(error, 'forbidden') ? (
        <p role="alert" className="error">
          The current password is not right.
        </p>
      ) : (
        <ErrorNote error={error} />
      )}
      {done && (
        <p role="status" className="success">
          Your password is changed. You stay signed in here; everywhere else you were signed out.
        </p>
      )}
      <Button type="submit" className="button primary" isDisabled={pending}>
        Change password
      </Button>
    </form>
  );
}
