import { KeywayError, type Role } from '@keyway/contracts';

/** Errors of the users (tenant members) module; the code says how the edge answers. */
export class UserError extends KeywayError {
  /** Also what another tenant's member id gets: existence is never revealed across tenants. */
  static notFound(id: string): UserError {
    return new UserError('not_found', `No user ${id}`);
  }

  static emailTaken(): UserError {
    return new UserError('conflict', 'A member with this email already exists in the tenant');
  }

  /** Giving a role (or the email or password of a member who has it) the caller could not hold itself. */
  static cannotGrant(role: Role, missing: string): UserError {
    return new UserError('insufficient_scope', `Only a caller holding every scope of the ${role} role may give it, or set the email or password of a member who has it; this one lacks ${missing}`, {
      required_scope: missing,
    });
  }

  static lastAdmin(): UserError {
    return new UserError('conflict', 'A tenant keeps at least one admin: make another member admin first');
  }

  /** Members span both modes: a test key may not add, change or remove one (it would act live through them). */
  static testKey(): UserError {
    return new UserError('forbidden', 'A test key cannot add, change or remove members: members act in live mode too. Use a live key or a session');
  }

  /** The member's role changed between the grant check and the write: the check is retried by the client. */
  static changedMeanwhile(id: string): UserError {
    return new UserError('conflict', `Member ${id} changed while this request ran: read it again and retry`);
  }

  static currentPasswordNeeded(): UserError {
    return new UserError('invalid_request', 'The request is invalid', {
      details: [{ field: 'current_password', message: 'give your current password to change your own email or password' }],
    });
  }

  static currentPasswordWrong(): UserError {
    return new UserError('forbidden', 'The current password is not right');
  }
}
