import { KeywayError } from '@keyway/contracts';

/** Errors of asking contacts about a contact_id; the code says how the edge answers. */
export class ContactCheckError extends KeywayError {
  /** `invalid_request` on `contact_id`, as contacts answers an unknown `account_id`. */
  static unknownContact(contactId: string): ContactCheckError {
    return new ContactCheckError('invalid_request', 'The contact does not exist', {
      details: [{ field: 'contact_id', message: `no contact ${contactId}` }],
    });
  }

  /** Contacts is down, silent or broken: worth a retry (503), never `internal`. */
  static unavailable(): ContactCheckError {
    return new ContactCheckError('unavailable', 'The contact could not be checked; retry later');
  }
}
