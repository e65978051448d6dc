import { KeywayError } from '@keyway/contracts';
import { isUniqueViolation } from '@keyway/database';

/** Errors of the accounts module; the code says how the edge answers. */
export class AccountError extends KeywayError {
  /** Also what another tenant's (or the other mode's) account id gets: existence is never revealed. */
  static notFound(id: string): AccountError {
    return new AccountError('not_found', `No account ${id}`);
  }

  /** What Postgres refused, as the client's mistake; anything else is returned as it came. */
  static fromDatabase(err: unknown): unknown {
    if (isUniqueViolation(err, 'accounts_external')) return new AccountError('conflict', 'Another account already has this external_id', { field: 'external_id' });
    return err;
  }
}
