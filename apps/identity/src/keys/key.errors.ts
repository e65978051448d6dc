import { KeywayError, type ErrorCode } from '@keyway/contracts';

/** Errors of the key aggregate; the code says how the edge answers. */
export class KeyError extends KeywayError {
  constructor(code: ErrorCode, message: string, extra: Record<string, unknown> = {}) {
    super(code, message, extra);
    this.name = 'KeyError';
  }
}

/** Another writer appended to the stream first; retried by the command handler. */
export class StreamVersionConflict extends Error {
  constructor(readonly streamId: string, readonly expected: number) {
    super(`stream ${streamId} moved past version ${expected}`);
    this.name = 'StreamVersionConflict';
  }
}
