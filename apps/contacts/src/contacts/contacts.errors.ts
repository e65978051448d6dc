import { KeywayError } from '@keyway/contracts';
import { isUniqueViolation, pgErrorCode } from '@keyway/database';

/** Errors of the contacts module; the code says how the edge answers. */
export class ContactError extends KeywayError {
  /** Also what another tenant's (or the other mode's) contact id gets: existence is never revealed. */
  static notFound(id: string): ContactError {
    return new ContactError('not_found', `No contact ${id}`);
  }

  /** Unique per tenant and mode: the other mode's contacts never cause it. */
  static duplicate(field: 'email' | 'external_id'): ContactError {
    return new ContactError('conflict', `Another contact already has this ${field}`, { field });
  }

  /** An `account_id` that names no account of the tenant and mode: the caller's mistake, on that field. */
  static unknownAccount(accountId: unknown): ContactError {
    return new ContactError('invalid_request', 'The account does not exist', {
      details: [{ field: 'account_id', message: `no account ${String(accountId)}` }],
    });
  }

  /** What Postgres refused, as the client's mistake; anything else is returned as it came. */
  static fromDatabase(err: unknown, values: Record<string, unknown>): unknown {
    if (isUniqueViolation(err, 'contacts_email')) return ContactError.duplicate('email');
    if (isUniqueViolation(err, 'contacts_external')) return ContactError.duplicate('external_id');
    // The composite foreign key: no account of this tenant and mode (or it was deleted meanwhile).
    if (pgErrorCode(err) === '23503') return ContactError.unknownAccount(values.account_id);
    return err;
  }
}
