/**
 * The first load's two requests, started by a module of a few hundred bytes that the page runs
 * before the main bundle (a separate script, not inline: the CSP allows no inline script). The
 * bundle takes a few hundred ms to parse and evaluate; these answers arrive meanwhile, and the
 * SDK's fetch (src/api.ts) takes each one once instead of asking again.
 *
 * Only plain GETs the app would make first and alike (same URL, no extra header): the session check,
 * and on the list page (`/dashboard/`) the first page of live keys, as `prefetchKeys` asks it.
 * Signed out, both answer 401, which the app reads as "sign in" whether it asked or this did.
 */
const early = new Map<string, Promise<Response>>();
const start = (url: string): void => {
  const p = fetch(url, { credentials: 'same-origin' });
  // Read by the app; should it never take one (a failed bundle), no unhandled rejection either.
  p.catch(() => undefined);
  early.set(url, p);
};
start('/auth/v1/session');
if (/^\/dashboard\/?$/.test(window.location.pathname)) start('/v1/keys?pageSize=50');
(window as { __keywayEarly?: Map<string, Promise<Response>> }).__keywayEarly = early;
