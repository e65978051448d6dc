import { useState } from 'react';
import { Button, Link, RouterProvider } from 'react-aria-components';
import { ModalDialog, Spinner } from './components/ui';
import { KeyPage } from './pages/KeyPage';
import { KeysPage } from './pages/KeysPage';
import { MembersPage } from './pages/MembersPage';
import { SignInForm } from './pages/SignIn';
import { href, navigate, usePath } from './router';
import { useCan, useSession, useSessionApi } from './session';

export function App() {
  const { state } = useSessionApi();
  return (
    <RouterProvider navigate={navigate}>
      <a className="skip" href="#main">
        Skip to content
      </a>
      {state.status === 'loading' ? (
        <main id="main" className="main">
          <Spinner />
        </main>
      ) : state.status === 'signed-out' ? (
        <main id="main" className="main narrow">
          <h1>Sign in to Keyway</h1>
          <SignInForm />
        </main>
      ) : (
        <>
          <Shell />
          {state.status === 'expired' && (
            // Over the page, which stays as it was (an open form keeps what was typed).
            <ModalDialog title="Your session has ended" onClose={() => undefined} locked>
              <p>Sign in again to go on where you were.</p>
              <SignInForm email={state.session.member.email} />
            </ModalDialog>
          )}
        </>
      )}
    </RouterProvider>
  );
}

function Shell() {
  const session = useSession();
  const { signOut } = useSessionApi();
  const isAdmin = useCan('users:write');
  const path = usePath();
  const [signingOut, setSigningOut] = useState(false);
  return (
    <>
      <header className="top">
        <span className="brand">Keyway</span>
        <nav aria-label="Settings">
          <ul>
            <li>
              <Link href={href('/')} aria-current={path === '/' || path.startsWith('/keys') ? 'page' : undefined}>
                API access
              </Link>
            </li>
            {isAdmin && (
              <li>
                <Link href={href('/members')} aria-current={path === '/members' ? 'page' : undefined}>
                  Members
                </Link>
              </li>
            )}
          </ul>
        </nav>
        <div className="who">
          <span>
            {session.member.name} · {session.tenant.name} · <span className="role">{session.role}</span>
          </span>
          <Button
            className="button small"
            isDisabled={signingOut}
            onPress={() => {
              setSigningOut(true);
              void signOut().finally(() => setSigningOut(false));
            }}
          >
            Sign out
          </Button>
        </div>
      </header>
      <main id="main" className="main">
        <Page path={path} isAdmin={isAdmin} />
      </main>
    </>
  );
}

function Page({ path, isAdmin }: { path: string; isAdmin: boolean }) {
  const key = /^\/keys\/([A-Za-z0-9_]+)$/.exec(path);
  if (key) {
    const mode = new URLSearchParams(window.location.search).get('mode') === 'test' ? 'test' : 'live';
    return <KeyPage key={`${mode}:${key[1]}`} id={key[1]!} mode={mode} />;
  }
  if (path === '/members' && isAdmin) return <MembersPage />;
  if (path === '/' || path === '/members') return <KeysPage />;
  return (
    <section>
      <h1>Page not found</h1>
      <p>
        <Link href={href('/')}>Go to API access</Link>
      </p>
    </section>
  );
}
