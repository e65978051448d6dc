import createClient, { type Client, type ClientPathsWithMethod, type FetchResponse, type MaybeOptionalInit } from 'openapi-fetch';
import { KeywayApiError, toApiError } from './errors';
import type { paths } from './generated/openapi';
import { retryingFetch } from './transport';

export interface KeywayClientOptions {
  /** Where the API is: `https://api.example.com` (the gateway), or `''` for the page's own origin. */
  baseUrl: string;
  /** An API key (`kw_live_…`, `kw_test_…`) or, for `/admin/v1`, the operator token: sent as `Authorization: Bearer`. */
  apiKey?: string;
  /**
   * The dashboard's way in: a session cookie instead of a key. `'include'` sends the cookie (the
   * browser keeps it; it is HttpOnly), and every change carries `csrfToken`. No Authorization header.
   */
  credentials?: 'include' | 'same-origin' | 'omit';
  /** The session's CSRF token (from sign-in or `GET /auth/v1/session`), or a function read before each call. */
  csrfToken?: string | (() => string | null | undefined);
  /** Headers for every call, e.g. `{ 'Keyway-Mode': 'test' }` for a session acting on test data. */
  headers?: Record<string, string>;
  /** Another fetch (a test's, a proxy's); the global one by default. */
  fetch?: (input: Request) => Promise<Response>;
  /** Retries after a 429, a 503 or a network failure, for calls safe to repeat (default 2; 0: none). */
  retries?: number;
  /** The longest wait before one retry, in ms (default 20 s): a longer `Retry-After` is answered at once. */
  maxRetryDelayMs?: number;
  /**
   * Give every non-GET call an `Idempotency-Key` when it has none and retries are on (default
   * true), so that it can be retried without doing the work twice. Off: such calls are never retried.
   */
  idempotencyKeys?: boolean;
}

const DEFAULT_RETRIES = 2;
const DEFAULT_MAX_RETRY_DELAY_MS = 20_000;

type Method = 'get' | 'put' | 'post' | 'patch' | 'delete';
type RawClient = Client<paths, 'application/json'>;
// openapi-fetch's own rule for when `init` may be left out (its InitParam is not exported).
type RequiredKeysOf<T> = { [K in keyof T]-?: object extends Pick<T, K> ? never : K }[keyof T];
type InitParam<Init> = [RequiredKeysOf<Init>] extends [never] ? [(Init & { [key: string]: unknown })?] : [Init & { [key: string]: unknown }];
/** What a successful call resolves to: the response body, `undefined` for a 204. */
type Data<R> = R extends { data: infer D; error?: never } ? ([D] extends [never] ? undefined : D) : never;

/** One method of the client: the path and its typed parameters and body in, the typed body out. */
type KeywayCall<M extends Method> = <P extends ClientPathsWithMethod<RawClient, M>, I extends MaybeOptionalInit<paths[P], M>>(
  url: P,
  ...init: InitParam<I>
) => Promise<Data<FetchResponse<NonNullable<paths[P][M]>, I, 'application/json'>>>;

export interface KeywayClient {
  GET: KeywayCall<'get'>;
  POST: KeywayCall<'post'>;
  PUT: KeywayCall<'put'>;
  PATCH: KeywayCall<'patch'>;
  DELETE: KeywayCall<'delete'>;
  /** The underlying openapi-fetch client: `{ data, error, response }` without throwing, for headers and the like. */
  raw: RawClient;
}

/**
 * A typed client of the Keyway API. Each method takes a path of the API (typed: only paths that
 * exist, with their parameters and body) and resolves to the answer's typed body, or rejects with
 * a KeywayApiError carrying the API's error code. Runs in browsers and in Node ≥ 20: no Node
 * built-ins, only fetch and Web Crypto.
 */
export function createKeywayClient(options: KeywayClientOptions): KeywayClient {
  const retries = options.retries ?? DEFAULT_RETRIES;
  if (!Number.isInteger(retries) || retries < 0) throw new RangeError('retries must be a whole number ≥ 0');
  const csrf = options.csrfToken;
  const base = options.fetch ?? ((input: Request) => globalThis.fetch(input));
  const raw = createClient<paths, 'application/json'>({
    baseUrl: options.baseUrl.replace(/\/+$/, ''),
    ...(options.credentials ? { credentials: options.credentials } : {}),
    headers: {
      ...options.headers,
      ...(options.apiKey ? { Authorization: `Bearer ${options.apiKey}` } : {}),
    },
    fetch: retryingFetch({
      fetch: base,
      retries,
      maxDelayMs: options.maxRetryDelayMs ?? DEFAULT_MAX_RETRY_DELAY_MS,
      idempotencyKeys: options.idempotencyKeys ?? true,
      csrfToken: typeof csrf === 'function' ? csrf : csrf === undefined ? undefined : () => csrf,
    }),
  });

  const call =
    <M extends Method>(method: M): KeywayCall<M> =>
    async (url, ...init) => {
      const r = (await raw.request(method, url as never, ...(init as [never]))) as { data?: unknown; error?: unknown; response: Response };
      if (!r.response.ok) throw toApiError(r.response, r.error);
      return r.data as never;
    };

  return { GET: call('get'), POST: call('post'), PUT: call('put'), PATCH: call('patch'), DELETE: call('delete'), raw };
}

/** Whether `err` is the API's answer with this code: `if (isKeywayError(err, 'not_found')) …`. */
export function isKeywayError(err: unknown, code?: KeywayApiError['code']): err is KeywayApiError {
  return err instanceof KeywayApiError && (code === undefined || err.code === code);
}
