import { lazy, Suspense, useState } from 'react';
import { Button, Link, RouterProvider } from 'react-aria-components';
import { Spinner } from './components/ui';
import { KeysPage } from './pages/KeysPage';
import { href, navigate, usePath } from './router';
import { useCan, useSession, useSessionApi } from './session';

/**
 * The first load carries the key list only (the page most loads show, and the one the speed target
 * is about): every other page, sign-in and the dialogs load with their first use, each a small
 * chunk from this origin.
 */
const KeyPage = lazy(() => import('./pages/KeyPage').then((m) => ({ default: m.KeyPage })));
const AccountPage = lazy(() => import('./pages/AccountPage').then((m) => ({ default: m.AccountPage })));
const MembersPage = lazy(() => import('./pages/MembersPage').then((m) => ({ default: m.MembersPage })));
const SignInForm = lazy(() => import('./pages/SignIn').then((m) => ({ default: m.SignInForm })));
const SessionEnded = lazy(() => import('./pages/SessionEnded').then((m) => ({ default: m.SessionEnded })));

export function App() {
  const { state } = useSessionApi();
  return (
    <RouterProvider navigate={navigate}>
      <a className="skip" href="#main">
        Skip to content
      </a>
      {state.status === 'signed-out' ? (
        <main id="main" className="main narrow">
          <h1>Sign in to Keyway</h1>
          <Suspense fallback={<Spinner />}>
            <SignInForm />
          </Suspense>
        </main>
      ) : (
        <>
          <Shell />
          {state.status === 'expired' && (
            // Over the page, which stays as it was (an open form keeps what was typed).
            <Suspense fallback={null}>
              <SessionEnded email={state.session.member.email} />
            </Suspense>
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
            <li>
              <Link href={href('/account')} aria-current={path === '/account' ? 'page' : undefined}>
                Your account
              </Link>
            </li>
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
        <Suspense fallback={<Spinner />}>
          <Page path={path} isAdmin={isAdmin} />
        </Suspense>
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
  if (path === '/account') return <AccountPage />;
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
