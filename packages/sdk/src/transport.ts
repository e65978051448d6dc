import { retryAfterSeconds } from './errors';

type Fetch = (input: Request) => Promise<Response>;

interface RetryPolicy {
  /** Retries after the first attempt (0: none). */
  retries: number;
  /** The longest the client waits before one retry; a `Retry-After` above it is not waited for. */
  maxDelayMs: number;
  /** Give each non-GET call an `Idempotency-Key` when it has none, so that it can be retried. */
  idempotencyKeys: boolean;
}

export interface TransportOptions extends RetryPolicy {
  fetch: Fetch;
  /** Read before each call: the session's CSRF token, sent on every method but GET and HEAD. */
  csrfToken?: (() => string | null | undefined) | undefined;
  /** Waits between attempts (tests make it instant); resolves early with nothing on abort. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

const IDEMPOTENCY_KEY = 'Idempotency-Key';
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);
/** The answers that say "the same call may work later": rate limited, unavailable. */
const RETRY_STATUSES = new Set([429, 503]);
/** Without a `Retry-After`: 0.5 s, 1 s, 2 s… (each with jitter), within maxDelayMs. */
const BACKOFF_BASE_MS = 500;

/** A v4 UUID from Web Crypto (browsers in a secure context, Node ≥ 19), or none. */
function newIdempotencyKey(): string | undefined {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  return typeof c?.randomUUID === 'function' ? c.randomUUID() : undefined;
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

const backoff = (attempt: number, capMs: number): number => Math.min(capMs, BACKOFF_BASE_MS * 2 ** attempt * (0.5 + Math.random() / 2));

/**
 * The fetch the generated client calls, once per logical call: it adds the CSRF token and, when
 * retries are on, an Idempotency-Key (Stripe's SDKs do the same), then sends, retrying a bounded
 * number of times on 429 and 503 (after `Retry-After`) and on network failures. A call is retried
 * only when it is safe to repeat: a GET or HEAD, or a call that carries an Idempotency-Key (the
 * same key on every attempt, so the server does the work once). A `Retry-After` longer than
 * maxDelayMs is not waited for: the caller gets the 429 or 503 at once, with its `retryAfter`.
 */
export function retryingFetch(options: TransportOptions): Fetch {
  const sleep = options.sleep ?? abortableSleep;
  return async (input: Request): Promise<Response> => {
    const method = input.method.toUpperCase();
    const headers = new Headers(input.headers);
    if (!SAFE.has(method)) {
      const csrf = options.csrfToken?.();
      if (csrf) headers.set('X-CSRF-Token', csrf);
      if (options.retries > 0 && options.idempotencyKeys && !headers.has(IDEMPOTENCY_KEY)) {
        const key = newIdempotencyKey();
        if (key !== undefined) headers.set(IDEMPOTENCY_KEY, key);
      }
    }
    // One Request for the whole logical call; each attempt sends a clone, so the body can be re-sent.
    const request = new Request(input, { headers });
    const repeatable = SAFE.has(method) || headers.has(IDEMPOTENCY_KEY);
    const maxAttempts = repeatable ? options.retries + 1 : 1;

    for (let attempt = 1; ; attempt++) {
      const last = attempt >= maxAttempts;
      let response: Response;
      try {
        response = await options.fetch(last ? request : request.clone());
      } catch (err) {
        // A network failure (the request may or may not have arrived): retried like a 503.
        if (last || request.signal.aborted) throw err;
        await sleep(backoff(attempt - 1, options.maxDelayMs), request.signal);
        request.signal.throwIfAborted();
        continue;
      }
      if (last || !RETRY_STATUSES.has(response.status)) return response;
      const after = retryAfterSeconds(response.headers);
      const delay = after === undefined ? backoff(attempt - 1, options.maxDelayMs) : after * 1000;
      if (delay > options.maxDelayMs) return response;
      // The answer we do not return: free its connection.
      await response.body?.cancel().catch(() => undefined);
      await sleep(delay, request.signal);
      request.signal.throwIfAborted();
    }
  };
}
