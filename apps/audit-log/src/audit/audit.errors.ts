import { KeywayError, type ErrorCode } from '@keyway/contracts';

/** This module's errors: a code from the shared table, mapped to HTTP only at the gateway. */
export class AuditLogError extends KeywayError {
  constructor(code: ErrorCode, message: string, extra: Record<string, unknown> = {}) {
    super(code, message, extra);
    this.name = 'AuditLogError';
  }

  /** Also what another tenant's key id gets: existence is never revealed across tenants. */
  static keyNotFound(keyId: string): AuditLogError {
    return new AuditLogError('not_found', `No key ${keyId}`);
  }
}
