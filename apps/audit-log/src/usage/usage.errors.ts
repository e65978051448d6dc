import { KeywayError, type ErrorCode } from '@keyway/contracts';

/** The usage module's errors: a code from the shared table, mapped to HTTP only at the gateway. */
export class UsageError extends KeywayError {
  constructor(code: ErrorCode, message: string, extra: Record<string, unknown> = {}) {
    super(code, message, extra);
    this.name = 'UsageError';
  }

  /** Also what another tenant's or mode's key id gets: existence is never revealed across them. */
  static keyNotFound(keyId: string): UsageError {
    return new UsageError('not_found', `No key ${keyId}`);
  }

  static invalidField(field: string, message: string): UsageError {
    return new UsageError('invalid_request', 'The request is invalid', { details: [{ field, message }] });
  }
}
