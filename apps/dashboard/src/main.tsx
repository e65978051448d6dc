import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { prefetchKeys } from './pages/KeysPage';
import { checkSession, SessionProvider } from './session';
import './styles.css';

const queryClient = new QueryClient({
  defaultOptions: {
    // The SDK already retries what is safe to retry (429, 503, network); an error is shown at once.
    queries: { retry: false, staleTime: 10_000, refetchOnWindowFocus: true },
  },
});

function render(session: Awaited<ReturnType<typeof checkSession>>): void {
  createRoot(document.getElementById('root')!).render(
    <StrictMode>
      <QueryClientProvider client={queryClient}>
        <SessionProvider initial={session}>
          <App />
        </SessionProvider>
      </QueryClientProvider>
    </StrictMode>,
  );
}

/**
 * One first render of what the page shows, rather than a spinner and then two more renders (each a
 * React commit, costly on a slow CPU): who is signed in, and on the list page its keys, are usually
 * here already (src/boot.ts asked for both before this bundle ran). The keys are waited for a
 * short while at most: the list shows its own "Loading keys…" after that. Not a top-level await:
 * that splits the bundle into more chunks, so more requests on the first load.
 */
void Promise.all([checkSession(), Promise.race([prefetchKeys(queryClient), new Promise((r) => setTimeout(r, 300))])]).then(([session]) => render(session));
