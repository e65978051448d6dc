import { EventVersionError, parseKeyEvent, parseKeyEventData, upcast } from './events';
import { CreateKeyBody } from './keys';

describe('key events as readers see them', () => {
  // 40 values of 500 characters: what the metadata rules allowed before the 16 KiB budget.
  const bigMetadata = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, 'x'.repeat(500)]));
  const created = { name: 'old', scopes: ['contacts:read'], environment: 'live', expires_at: null, rate_limit: null, metadata: bigMetadata };

  it('a stored event is read whatever request rules came after it (the 16 KiB budget binds requests only)', () => {
    expect(CreateKeyBody.safeParse({ name: 'new', scopes: [], metadata: bigMetadata }).success).toBe(false);
    expect(parseKeyEventData('created', 1, created).metadata).toEqual(bigMetadata);
    expect(parseKeyEventData('updated', 1, { metadata: bigMetadata }).metadata).toEqual(bigMetadata);
  });

  it('refuses a version newer than this reader with EventVersionError, which consumers retry rather than drop', () => {
    expect(() => upcast('created', 2, created)).toThrow(EventVersionError);
    const envelope = { id: 'evt_1', type: 'created', schema_version: 9, occurred_at: '2026-01-01T00:00:00Z', tenant_id: 't', key_id: 'k', prefix: 'kw_live_aaaaaaaa', actor: { type: 'operator', id: 'o' }, data: created };
    expect(() => parseKeyEvent(envelope)).toThrow(EventVersionError);
    expect(parseKeyEvent({ ...envelope, schema_version: 1 }).type).toBe('created');
  });
});
