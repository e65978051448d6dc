import { KeywayError, type ErrorCode } from '@keyway/contracts';

/** Errors of the key aggregate; the code says how the edge answers. */
export class KeyError extends KeywayError {
  constructor(code: ErrorCode, message: string, extra: Record<string, unknown> = {}) {
    super(code, message, extra);
    this.name = 'KeyError';
  }
}
