import { isDataError } from '@keyway/database';
import { parseAuditEvent, toEntry } from './audit-event';
import type { AuditEventEntity } from './audit-event.entity';

const valid = {
  id: 'evt_1',
  type: 'revoked',
  schema_version: 1,
  occurred_at: '2025-01-01T00:00:00.000Z',
  tenant_id: 'ten_1',
  key_id: 'key_1',
  prefix: 'kw_live_abcd1234',
  actor: { type: 'key', id: 'key_root' },
  data: { reason: 'leaked' },
};

describe('parseAuditEvent', () => {
  it('accepts a key event', () => {
    expect(parseAuditEvent(valid)).toEqual(valid);
  });

  it('refuses what the table could not store, so only that message is terminated', () => {
    expect(() => parseAuditEvent({ ...valid, occurred_at: 'yesterday' })).toThrow();
    expect(() => parseAuditEvent({ ...valid, prefix: 'kw\u0000' })).toThrow(/NUL/);
  });

  it('refuses what breaks the contract', () => {
    expect(() => parseAuditEvent({ ...valid, schema_version: 2 })).toThrow();
    expect(() => parseAuditEvent({ ...valid, type: 'deleted' })).toThrow();
    expect(() => parseAuditEvent({ ...valid, data: { reason: 7 } })).toThrow();
  });
});

describe('parseAuditEvent: tenant events', () => {
  const tenant = {
    id: 'evt_t',
    type: 'updated',
    schema_version: 1,
    occurred_at: '2025-01-01T00:00:00.000Z',
    tenant_id: 'ten_1',
    actor: { type: 'operator', id: 'operator' },
    data: { name: 'Acme' },
  };

  it('reads an operator\'s tenant event as tenant.<type>, without a key, its data as the contract names it', () => {
    expect(parseAuditEvent({ ...tenant, data: { name: 'Acme', token: 'secret' }, token: 'x' })).toEqual({
      ...tenant,
      type: 'tenant.updated',
      key_id: null,
      prefix: null,
    });
  });

  it('never reads a key event missing its key as a tenant event', () => {
    const { key_id: _key, ...keyless } = valid;
    expect(() => parseAuditEvent({ ...keyless, type: 'updated', data: { name: 'x' } })).toThrow();
    expect(() => parseAuditEvent({ ...tenant, schema_version: 2 })).toThrow();
    expect(() => parseAuditEvent({ ...tenant, type: 'deleted' })).toThrow();
  });
});

describe('toEntry', () => {
  it('maps a row to the public entry, without tenant, stream or chain internals', () => {
    const row: AuditEventEntity = {
      id: 'evt_1',
      tenant_id: 'ten_1',
      key_id: 'key_1',
      type: 'revoked',
      schema_version: 1,
      occurred_at: new Date('2025-01-01T00:00:00.000Z'),
      prefix: 'kw_live_abcd1234',
      actor_type: 'key',
      actor_id: 'key_root',
      data: { reason: null },
      stream_seq: '7',
      recorded_at: new Date(),
      environment: 'live',
      seal: Buffer.alloc(32, 1),
      chain_pos: '3',
      hash: Buffer.alloc(32, 2),
      linked_at: new Date(),
    };
    expect(toEntry(row)).toEqual({
      id: 'evt_1',
      type: 'revoked',
      occurred_at: '2025-01-01T00:00:00.000Z',
      key_id: 'key_1',
      prefix: 'kw_live_abcd1234',
      environment: 'live',
      actor: { type: 'key', id: 'key_root' },
      changes: { reason: null },
    });
  });
});

describe('isDataError', () => {
  it('is true only for errors a retry cannot fix', () => {
    expect(isDataError({ driverError: { code: '22P05' } })).toBe(true);
    expect(isDataError({ code: '23502' })).toBe(true);
    expect(isDataError({ code: '57P01' })).toBe(false); // admin shutdown: retry
    expect(isDataError(new Error('connection terminated'))).toBe(false);
    expect(isDataError(null)).toBe(false);
  });
});
