import { KeywayError, type ErrorCode } from '@keyway/contracts';

/** Errors of the tenants module; the code says how the edge answers. */
export class TenantError extends KeywayError {
  constructor(code: ErrorCode, message: string, extra: Record<string, unknown> = {}) {
    super(code, message, extra);
    this.name = 'TenantError';
  }
}
