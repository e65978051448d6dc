import { STREAMS } from '@keyway/contracts';
import { BaseEnv } from '@keyway/runtime';
import { z } from 'zod';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const name = z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and - only');

export const JourneysEnv = BaseEnv.extend({
  /**
   * How long a write waits for contacts to confirm a `contact_id`. Well under the gateway's own
   * timeout, so a silent contacts service is answered `unavailable` by us, not by a gateway timeout.
   */
  CONTACTS_TIMEOUT_MS: int(50, 30_000).default(2_000),
  /** The domain events stream (owned by contacts): journeys publishes to it and reads contacts' deletions from it. */
  DOMAIN_STREAM: name.default(STREAMS.domain.name),
  /** While contacts has not created the stream, a warning each time this passes. */
  DOMAIN_STREAM_WAIT_MS: int(100, 600_000).default(60_000),
  /** The outbox relay to JetStream; off only in tests that read the outbox themselves. */
  RELAY_ENABLED: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  /** How often the relay looks for events when no NOTIFY woke it. */
  RELAY_POLL_MS: int(10, 60_000).default(500),
  /** Shared by every replica: journeys' consumer of `keyway.contacts.deleted`. */
  CONTACTS_DELETED_DURABLE: name.default('journeys-contacts-deleted'),
  /** Deliveries before a deletion that keeps failing is dead-lettered. */
  CONTACTS_DELETED_MAX_DELIVER: int(1, 100).default(10),
  /** Delay before a failed deletion's first redelivery (doubles each time). */
  CONTACTS_DELETED_NAK_DELAY_MS: int(0, 600_000).default(1_000),
});
export type JourneysConfig = z.infer<typeof JourneysEnv>;
export const SERVICE = 'journeys';
export const JOURNEYS_CONFIG = Symbol('JOURNEYS_CONFIG');
/** The service's own database URL (derived from DATABASE_URL), for the relay's own connection. */
export const JOURNEYS_DATABASE_URL = Symbol('JOURNEYS_DATABASE_URL');
