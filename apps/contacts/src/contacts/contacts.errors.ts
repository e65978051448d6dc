import { KeywayError } from '@keyway/contracts';

/** Errors of the contacts module; the code says how the edge answers. */
export class ContactError extends KeywayError {
  /** Also what another tenant's contact id gets: existence is never revealed across tenants. */
  static notFound(id: string): ContactError {
    return new ContactError('not_found', `No contact ${id}`);
  }

  static duplicate(): ContactError {
    return new ContactError('conflict', 'A contact with this email or external_id already exists');
  }

  /** An `account_id` that names no account of the tenant: the caller's mistake, on that field. */
  static unknownAccount(accountId: string): ContactError {
    return new ContactError('invalid_request', 'The account does not exist', {
      details: [{ field: 'account_id', message: `no account ${accountId}` }],
    });
  }
}
