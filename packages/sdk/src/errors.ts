import type { ErrorCode, ErrorDetail } from '@keyway/contracts';

/**
 * Every non-2xx answer of the API, as one error class: `code` is the documented machine-readable
 * code (a union: switch on it), `message` the API's human-readable `error`, `requestId` the
 * `X-Request-Id` to quote to support. The body's other fields stay on `body` and, for the ones
 * the API documents, as typed properties (`details` on a 400, `required_scope` on a 403,
 * `window` / `retry_after` on a 429, `tenants` on a 409 `tenant_required`).
 */
export class KeywayApiError extends Error {
  override readonly name = 'KeywayApiError';
  readonly status: number;
  readonly code: ErrorCode;
  readonly requestId: string | undefined;
  /** The whole error body as answered (or `{}` when it was not a JSON object). */
  readonly body: Readonly<Record<string, unknown>>;
  readonly details: ErrorDetail[] | undefined;
  readonly requiredScope: string | undefined;
  readonly window: string | undefined;
  /** Seconds, from the body or the `Retry-After` header. */
  readonly retryAfter: number | undefined;

  constructor(init: { status: number; code: ErrorCode; message: string; requestId?: string | undefined; body?: Record<string, unknown>; retryAfter?: number | undefined }) {
    super(init.message);
    this.status = init.status;
    this.code = init.code;
    this.requestId = init.requestId;
    const body = init.body ?? {};
    this.body = body;
    this.details = Array.isArray(body['details']) ? (body['details'] as ErrorDetail[]) : undefined;
    this.requiredScope = typeof body['required_scope'] === 'string' ? body['required_scope'] : undefined;
    this.window = typeof body['window'] === 'string' ? body['window'] : undefined;
    this.retryAfter = typeof body['retry_after'] === 'number' ? body['retry_after'] : init.retryAfter;
  }
}

/**
 * The code for an answer whose body is not the API's error shape (a proxy's HTML page, an empty
 * body): the one the API would have used for that status, so callers can still switch on it.
 */
function codeForStatus(status: number): ErrorCode {
  switch (status) {
    case 400:
      return 'invalid_request';
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
      return 'not_found';
    case 409:
      return 'conflict';
    case 413:
      return 'payload_too_large';
    case 415:
      return 'unsupported_media_type';
    case 422:
      return 'idempotency_mismatch';
    case 429:
      return 'rate_limited';
    case 502:
    case 503:
    case 504:
      return 'unavailable';
    default:
      return 'internal';
  }
}

/** `Retry-After` in seconds (delta or HTTP date), or undefined when absent or unreadable. */
export function retryAfterSeconds(headers: Headers, now = Date.now()): number | undefined {
  const raw = headers.get('retry-after');
  if (raw === null || raw.trim() === '') return undefined;
  if (/^\d+$/.test(raw.trim())) return Number(raw.trim());
  const at = Date.parse(raw);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

/** A failed answer as a KeywayApiError; `parsed` is what openapi-fetch read of its body. */
export function toApiError(response: Response, parsed: unknown): KeywayApiError {
  const body = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
  const ours = typeof body['code'] === 'string' && typeof body['error'] === 'string';
  const text = typeof parsed === 'string' && parsed.length > 0 ? `: ${parsed.slice(0, 200)}` : '';
  return new KeywayApiError({
    status: response.status,
    code: ours ? (body['code'] as ErrorCode) : codeForStatus(response.status),
    message: ours ? (body['error'] as string) : `HTTP ${response.status} ${response.statusText}${text}`.trim(),
    requestId: response.headers.get('x-request-id') ?? undefined,
    body,
    retryAfter: retryAfterSeconds(response.headers),
  });
}
