import { ErrorBody, type ErrorCode } from '@keyway/contracts';

/** The one place an error code becomes an HTTP status. Exhaustive: a new code fails to compile here. */
export function httpStatus(code: ErrorCode): number {
  switch (code) {
    case 'invalid_request':
      return 400;
    case 'missing_key':
    case 'invalid_key':
    case 'key_expired':
    case 'key_revoked':
    case 'key_disabled':
    case 'unauthorized':
    case 'invalid_credentials':
      return 401;
    case 'insufficient_scope':
    case 'forbidden':
    case 'csrf_failed':
      return 403;
    case 'not_found':
      return 404;
    case 'conflict':
    case 'tenant_required':
      return 409;
    case 'payload_too_large':
      return 413;
    case 'unsupported_media_type':
      return 415;
    case 'idempotency_mismatch':
      return 422;
    case 'rate_limited':
      return 429;
    case 'internal':
      return 500;
    case 'unavailable':
      return 503;
    default: {
      const never: never = code;
      throw new Error(`unmapped error code ${String(never)}`);
    }
  }
}

export const INTERNAL: ErrorBody = { error: 'Something went wrong on our side', code: 'internal' };
export const UNAVAILABLE: ErrorBody = { error: 'A service this request needs is not answering; try again', code: 'unavailable' };

/**
 * An error a service sent over NATS. Its extras pass through (e.g. `details`), but a 5xx never
 * carries anything but its code and a generic message, whatever the service put in it.
 */
export function fromServiceError(raw: unknown): ErrorBody {
  const parsed = ErrorBody.safeParse(raw);
  if (!parsed.success) return INTERNAL;
  const status = httpStatus(parsed.data.code);
  if (status >= 500) return parsed.data.code === 'unavailable' ? UNAVAILABLE : INTERNAL;
  return parsed.data;
}
