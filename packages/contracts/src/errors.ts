import { z } from 'zod';

/** Every error code that crosses a process boundary. The gateway maps each to HTTP in one switch. */
export const ErrorCode = z.enum([
  'invalid_request',
  'missing_key',
  'invalid_key',
  'key_expired',
  'key_revoked',
  'key_disabled',
  'unauthorized',
  /** Sign-in: no member with this email and password (the same answer for either being wrong). */
  'invalid_credentials',
  'insufficient_scope',
  'forbidden',
  /** A session's change without its `X-CSRF-Token`, or with another one. */
  'csrf_failed',
  'not_found',
  'conflict',
  /** Sign-in: the credentials match members of several tenants; the answer lists them. */
  'tenant_required',
  'unsupported_media_type',
  'payload_too_large',
  'idempotency_mismatch',
  'rate_limited',
  'internal',
  'unavailable',
]);
export type ErrorCode = z.infer<typeof ErrorCode>;

export const ErrorDetail = z.object({ field: z.string(), message: z.string() });
export type ErrorDetail = z.infer<typeof ErrorDetail>;

/** The body of every non-2xx HTTP answer, and the error half of every RPC reply. */
export const ErrorBody = z
  .object({
    error: z.string(),
    code: ErrorCode,
    details: z.array(ErrorDetail).optional(),
  })
  .loose();
export type ErrorBody = z.infer<typeof ErrorBody>;

/**
 * The one error type services throw: each module throws its own subclass (`KeyError`,
 * `ContactError`, …) with a code from the shared table, never an HTTP status. Crossing NATS it is
 * serialised as an ErrorBody.
 */
export class KeywayError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    // The subclass's name (KeyError, ContactError, …), so a log line says which module threw.
    this.name = new.target.name;
  }

  toBody(): ErrorBody {
    return { error: this.message, code: this.code, ...this.extra };
  }
}

/** Turns zod issues into the documented `details: [{field, message}]`. */
export function detailsFromZod(error: z.ZodError): ErrorDetail[] {
  return error.issues.map((issue) => ({
    field: issue.path.length > 0 ? issue.path.map(String).join('.') : '(body)',
    message: issue.message,
  }));
}

export function invalidRequest(error: z.ZodError, message = 'The request is invalid'): KeywayError {
  return new KeywayError('invalid_request', message, { details: detailsFromZod(error) });
}
