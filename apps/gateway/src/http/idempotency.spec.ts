import type { FastifyRequest } from 'fastify';
import { idempotencyOf } from './idempotency';

const route = { method: 'POST' as const, name: '/admin/v1/tenants' };
const req = { headers: { 'idempotency-key': 'retry-0001' } } as unknown as FastifyRequest;
const hashOf = (body: unknown) => idempotencyOf(route, req, {}, body)!.body_hash;

describe('the Idempotency-Key request hash', () => {
  it('leaves a password out at every depth (no fast hash of it is stored), and still tells other bodies apart', () => {
    const tenant = (password: string) => ({ name: 'Acme', admin: { name: 'Ada', email: 'ada@example.com', password } });
    expect(hashOf(tenant('correct horse'))).toBe(hashOf(tenant('battery staple')));
    expect(hashOf({ name: 'Ada', password: 'one' })).toBe(hashOf({ name: 'Ada', password: 'two' }));
    expect(hashOf({ name: 'Acme', admin: { email: 'ada@example.com' } })).not.toBe(hashOf({ name: 'Acme', admin: { email: 'bob@example.com' } }));
  });

  it('is the same for the same body whatever the key order', () => {
    expect(hashOf({ a: 1, b: { c: 2, d: 3 } })).toBe(hashOf({ b: { d: 3, c: 2 }, a: 1 }));
  });
});
