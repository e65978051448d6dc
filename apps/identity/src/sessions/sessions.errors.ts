import { KeywayError } from '@keyway/contracts';

export class SessionError extends KeywayError {
  /** The one answer for an unknown email and a wrong password: nothing tells them apart. */
  static invalidCredentials(): SessionError {
    return new SessionError('invalid_credentials', 'The email or the password is not right');
  }

  static tooManyAttempts(retryAfterSeconds: number): SessionError {
    return new SessionError('rate_limited', `Too many sign-in attempts for this email from this address; retry in ${retryAfterSeconds} s`, {
      window: 'sign_in',
      retry_after: retryAfterSeconds,
    });
  }

  static tenantRequired(tenants: Array<{ id: string; name: string }>): SessionError {
    return new SessionError('tenant_required', 'These credentials belong to members of several tenants: sign in again with one tenant_id', { tenants });
  }

  /** The session behind the call ended (signed out, expired, member removed) before identity saw it. */
  static ended(): SessionError {
    return new SessionError('unauthorized', 'No session, or it has ended: sign in again');
  }
}
