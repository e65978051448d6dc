import { DOMAIN_EVENT_TYPES, DOMAIN_EVENT_VERSIONS, domainEventEnvelope, domainEventSubject, parseDomainEvent } from './domain-events';
import { EventVersionError } from './events';
import { STREAMS } from './subjects';

const contact = {
  id: 'ct_1',
  type: 'user' as const,
  name: 'Ada',
  email: 'ada@example.com',
  external_id: null,
  account_id: null,
  properties: {},
  created_at: '2026-12-01T00:00:00.000Z',
  updated_at: '2026-12-01T00:00:00.000Z',
};
const base = { id: 'evt_1', occurred_at: '2026-12-01T00:00:00.000Z', tenant_id: 'ten_1', environment: 'test' as const, resource_id: 'ct_1', actor: { type: 'key' as const, id: 'key_1' } };

describe('domain events', () => {
  it('every type has a version and a subject inside KEYWAY_DOMAIN, never a request subject', () => {
    for (const type of DOMAIN_EVENT_TYPES) {
      expect(DOMAIN_EVENT_VERSIONS[type]).toBeGreaterThanOrEqual(1);
      const subject = domainEventSubject(type);
      expect(subject.startsWith('keyway.rpc.')).toBe(false);
      expect(STREAMS.domain.subjects.some((s) => subject.startsWith(s.replace('>', '')))).toBe(true);
    }
  });

  it('the envelope is stamped with the current version and read back as written', () => {
    const e = domainEventEnvelope({ ...base, type: 'contacts.created', data: contact });
    expect(e.schema_version).toBe(DOMAIN_EVENT_VERSIONS['contacts.created']);
    expect(parseDomainEvent(JSON.parse(JSON.stringify(e)))).toEqual(e);
    const deleted = domainEventEnvelope({ ...base, type: 'contacts.deleted', data: { id: 'ct_1', external_id: 'x' } });
    expect(parseDomainEvent(deleted)).toEqual(deleted);
  });

  it('refuses a payload of the wrong shape, a mode that is not one, and a version it does not know', () => {
    expect(() => parseDomainEvent({ ...base, type: 'contacts.created', schema_version: 1, data: { id: 'ct_1' } })).toThrow();
    expect(() => parseDomainEvent({ ...base, environment: 'staging', type: 'contacts.deleted', schema_version: 1, data: { id: 'ct_1', external_id: null } })).toThrow();
    expect(() => parseDomainEvent({ ...base, type: 'contacts.deleted', schema_version: 2, data: { id: 'ct_1', external_id: null } })).toThrow(EventVersionError);
    expect(() => parseDomainEvent({ ...base, type: 'contacts.renamed', schema_version: 1, data: {} })).toThrow();
  });
});
