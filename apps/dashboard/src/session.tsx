import { ROLE_SCOPES, type Role } from '@keyway/contracts';
import { useQueryClient } from '@tanstack/react-query';
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { api, setCsrfToken, whenSessionEnds } from './api';

export interface Session {
  member: { id: string; name: string; email: string };
  tenant: { id: string; name: string };
  role: Role;
}

/**
 * `signed-out`: nobody yet (the sign-in page).
 * `expired`: a call answered that the session ended while pages are open: sign-in shows over them,
 * so the page and whatever was typed into an open form stay, and the user goes on where they were.
 */
type State = { status: 'signed-out' } | { status: 'signed-in'; session: Session } | { status: 'expired'; session: Session };

interface SessionApi {
  state: State;
  signedIn: (session: Session & { csrf_token: string }) => void;
  signOut: () => Promise<void>;
}

const Context = createContext<SessionApi | null>(null);

export function useSessionApi(): SessionApi {
  const c = useContext(Context);
  if (c === null) throw new Error('useSessionApi outside SessionProvider');
  return c;
}

/** The signed-in member (pages render only with one). */
export function useSession(): Session {
  const { state } = useSessionApi();
  if (state.status !== 'signed-in' && state.status !== 'expired') throw new Error('useSession without a session');
  return state.session;
}

/** What the member's role allows, from the role → scopes table in @keyway/contracts. */
export function useCan(scope: (typeof ROLE_SCOPES)[Role][number]): boolean {
  return ROLE_SCOPES[useSession().role].includes(scope);
}

/** `GET /auth/v1/session`: who is signed in (with the CSRF token again), or null (nobody, or no answer). */
export async function checkSession(): Promise<(Session & { csrf_token: string }) | null> {
  try {
    return await api().GET('/auth/v1/session');
  } catch {
    // 401: nobody is signed in. Anything else (the API unreachable): sign-in says so when tried.
    return null;
  }
}

/** `initial`: the answer of `checkSession()` the page was started with (src/main.tsx). */
export function SessionProvider({ initial, children }: { initial: (Session & { csrf_token: string }) | null; children: ReactNode }) {
  const [state, setState] = useState<State>(() => {
    if (initial === null) return { status: 'signed-out' };
    const { csrf_token, ...session } = initial;
    setCsrfToken(csrf_token);
    return { status: 'signed-in', session };
  });
  const queryClient = useQueryClient();

  const ended = useCallback(() => {
    setCsrfToken(null);
    setState((s) => (s.status === 'signed-in' ? { status: 'expired', session: s.session } : s));
  }, []);
  useEffect(() => whenSessionEnds(ended), [ended]);

  const signedIn = useCallback(
    ({ csrf_token, ...session }: Session & { csrf_token: string }) => {
      setCsrfToken(csrf_token);
      setState((prev) => {
        // Another member (or tenant) in the same tab: nothing cached for the one before may show.
        if (prev.status === 'expired' && (prev.session.member.id !== session.member.id || prev.session.tenant.id !== session.tenant.id)) queryClient.clear();
        return { status: 'signed-in', session };
      });
      void queryClient.invalidateQueries();
    },
    [queryClient],
  );

  const signOut = useCallback(async () => {
    try {
      await api().DELETE('/auth/v1/session');
    } finally {
      setCsrfToken(null);
      queryClient.clear();
      setState({ status: 'signed-out' });
    }
  }, [queryClient]);

  const value = useMemo(() => ({ state, signedIn, signOut }), [state, signedIn, signOut]);
  return <Context.Provider value={value}>{children}</Context.Provider>;
}
