import { useSyncExternalStore } from 'react';

/** Where the gateway serves the app; every route below is relative to it. */
const BASE = '/dashboard';

const listeners = new Set<() => void>();
const notify = () => listeners.forEach((l) => l());
window.addEventListener('popstate', notify);

function subscribe(l: () => void): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

const current = (): string => {
  const p = window.location.pathname;
  const rest = p.startsWith(BASE) ? p.slice(BASE.length) : p;
  return rest === '' ? '/' : rest;
};

/** The path inside the app (`/`, `/keys/key_…`, `/members`). */
export function usePath(): string {
  return useSyncExternalStore(subscribe, current);
}

export const href = (to: string): string => `${BASE}${to}`;

export function navigate(to: string): void {
  const target = to.startsWith(BASE) ? to : href(to);
  if (target !== window.location.pathname) window.history.pushState(null, '', target);
  notify();
  window.scrollTo(0, 0);
}
