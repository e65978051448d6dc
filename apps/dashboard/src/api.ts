import { createKeywayClient, type components, type KeywayClient } from '@keyway/sdk';

export type KeyView = components['schemas']['KeyView'];
export type AuditEntry = components['schemas']['AuditEntry'];
export type UserView = components['schemas']['UserView'];
export type Scope = KeyView['scopes'][number];
export type Environment = KeyView['environment'];
export type RateLimit = KeyView['rate_limit'];

/**
 * The session's CSRF token lives in this module's memory only (never in storage): it comes with
 * sign-in and with `GET /auth/v1/session`, so a reloaded page gets it again.
 */
let csrfToken: string | null = null;
export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

let sessionEnded = (): void => undefined;
/** Called when any `/v1` call answers 401: without a key, that means the session has ended. */
export function whenSessionEnds(f: () => void): void {
  sessionEnded = f;
}

/** Requests src/boot.ts started before this bundle ran, by path and query; each is taken once. */
const early = (window as { __keywayEarly?: Map<string, Promise<Response>> }).__keywayEarly;

/**
 * The early answer to this request, if boot.ts made the same one: a GET of the same path and query
 * with no `Keyway-Mode` (boot asks in live mode). Taken once: a later call (a refetch) asks anew.
 */
function takeEarly(request: Request): Promise<Response> | undefined {
  if (early === undefined || request.method !== 'GET' || request.headers.has('keyway-mode')) return undefined;
  const url = new URL(request.url);
  if (url.origin !== window.location.origin) return undefined;
  const key = `${url.pathname}${url.search}`;
  const p = early.get(key);
  early.delete(key);
  return p;
}

/**
 * Every call goes through here, whichever page or dialog made it: a 401 from `/v1` (expired,
 * signed out elsewhere, member removed) shows the sign-in. `/auth/v1/session` answers its own 401s
 * (wrong password; nobody signed in on load), which its callers handle.
 */
const watchingFetch = async (request: Request): Promise<Response> => {
  const response = await (takeEarly(request) ?? fetch(request));
  if (response.status === 401 && !new URL(request.url).pathname.startsWith('/auth/')) sessionEnded();
  return response;
};

const options = { baseUrl: '', credentials: 'same-origin' as const, csrfToken: () => csrfToken, fetch: watchingFetch };
const clients: Record<Environment, KeywayClient> = {
  live: createKeywayClient(options),
  // A session acts in live mode unless it says otherwise (DESIGN, "Dashboard and members").
  test: createKeywayClient({ ...options, headers: { 'Keyway-Mode': 'test' } }),
};

/** The API, as a member in `mode`: the SDK with the session cookie and the CSRF token. */
export const api = (mode: Environment = 'live'): KeywayClient => clients[mode];
