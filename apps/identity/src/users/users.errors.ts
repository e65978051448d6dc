import { KeywayError } from '@keyway/contracts';

/** Errors of the users (tenant members) module; the code says how the edge answers. */
export class UserError extends KeywayError {
  /** Also what another tenant's member id gets: existence is never revealed across tenants. */
  static notFound(id: string): UserError {
    return new UserError('not_found', `No user ${id}`);
  }

  static emailTaken(): UserError {
    return new UserError('conflict', 'A member with this email already exists in the tenant');
  }
}
