import type { Route } from '@keyway/contracts';

const at = '2026-01-01T00:00:00.000Z';
const SAMPLES: Record<string, unknown> = {
  'keys.create': { name: 'ci', scopes: ['contacts:read'] },
  'keys.update': { name: 'renamed' },
  'keys.rotate': { grace_period_seconds: 60 },
  'keys.revoke': {},
  'keys.rotate.complete': {},
  'users.create': { name: 'Ada', email: 'ada@example.com', password: 'correct horse' },
  'users.update': { name: 'Ada L.' },
  'contacts.create': { type: 'lead', name: 'Ada', email: 'ada@example.com' },
  'contacts.update': { name: 'Ada L.' },
  'accounts.create': { name: 'Acme' },
  'accounts.update': { domain: 'acme.test' },
  'journeys.create': { anonymous_id: 'anon-1' },
  'journeys.update': { contact_id: 'ct_1' },
  'journeys.touchpoints.add': { type: 'page_view', occurred_at: at, url: 'https://acme.test/' },
  'journeys.conversions.add': { name: 'signup', occurred_at: at, value: 10 },
  'contacts.upsert': { type: 'user', name: 'Ada', email: 'ada@example.com' },
  'accounts.upsert': { name: 'Acme' },
  'contacts.batch': { items: [{ external_id: 'u-1', type: 'user', name: 'Ada', email: 'ada@example.com' }] },
};

/** A body the route's own schema accepts; a new body route without a sample fails loudly. */
export function validBody(route: Route): unknown {
  if (!route.body) return undefined;
  if (!(route.name in SAMPLES)) throw new Error(`no sample body for ${route.name}: add one to test/samples.ts`);
  return SAMPLES[route.name];
}

/** A concrete URL for the route's Fastify path. */
export function urlOf(route: Route, id = 'ct_abc123'): string {
  return route.path.replace(':id', id).replace(':external_id', 'ext-1');
}
