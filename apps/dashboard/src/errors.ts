import { isKeywayError, type KeywayApiError } from '@keyway/sdk';

type Code = KeywayApiError['code'];

/** Every code the API can answer, in plain words (the record keeps the list exhaustive). */
const WORDS: Record<Code, (e: KeywayApiError) => string> = {
  invalid_request: (e) =>
    e.details && e.details.length > 0
      ? `Please check the form: ${e.details.map((d) => `${d.field === '(body)' ? '' : `${d.field}: `}${d.message}`).join('; ')}.`
      : 'Please check the form: something in it is not valid.',
  missing_key: () => 'You are not signed in. Sign in to continue.',
  unauthorized: () => 'Your session has ended. Sign in again to continue.',
  invalid_key: () => 'This API key is not valid.',
  key_expired: () => 'This API key has expired.',
  key_revoked: () => 'This API key has been revoked.',
  key_disabled: () => 'This API key is switched off.',
  invalid_credentials: () => 'The email or the password is not right.',
  insufficient_scope: (e) => `Your role does not allow this${e.requiredScope ? ` (it needs the permission “${e.requiredScope}”)` : ''}. Ask an admin.`,
  forbidden: () => 'You cannot give a permission, a role or a limit that you do not hold yourself.',
  csrf_failed: () => 'Your session could not be confirmed. Reload the page and try again.',
  not_found: () => 'This no longer exists, or you do not have access to it.',
  conflict: () => 'This clashes with something that already exists — for example, another key or member with the same name or email — or with a change made at the same time. Change it and try again.',
  tenant_required: () => 'Your email belongs to more than one workspace: choose one.',
  unsupported_media_type: () => 'The dashboard sent something the API does not accept. Reload the page and try again.',
  payload_too_large: () => 'That is too large to save.',
  idempotency_mismatch: () => 'This request was already sent with different contents. Reload the page and try again.',
  rate_limited: (e) => `Too many requests right now. Try again${e.retryAfter !== undefined ? ` in ${e.retryAfter} second${e.retryAfter === 1 ? '' : 's'}` : ' shortly'}.`,
  internal: (e) => `Something went wrong on our side. Try again; if it keeps happening, contact support${e.requestId ? ` quoting ${e.requestId}` : ''}.`,
  unavailable: () => 'Keyway is not reachable right now. Try again in a moment.',
};

export function plainWords(err: unknown): string {
  if (isKeywayError(err)) return (WORDS[err.code] ?? WORDS.internal)(err);
  if (err instanceof TypeError) return 'Could not reach Keyway. Check your connection and try again.';
  return 'Something unexpected went wrong. Reload the page and try again.';
}
