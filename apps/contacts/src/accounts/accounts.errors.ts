import { KeywayError } from '@keyway/contracts';

/** Errors of the accounts module; the code says how the edge answers. */
export class AccountError extends KeywayError {
  /** Also what another tenant's account id gets: existence is never revealed across tenants. */
  static notFound(id: string): AccountError {
    return new AccountError('not_found', `No account ${id}`);
  }
}
