import { BaseEnv } from '@keyway/runtime';
import { z } from 'zod';

export const JourneysEnv = BaseEnv.extend({
  /**
   * How long a write waits for contacts to confirm a `contact_id`. Well under the gateway's own
   * timeout, so a silent contacts service is answered `unavailable` by us, not by a gateway timeout.
   */
  CONTACTS_TIMEOUT_MS: z.coerce.number().int().min(50).max(30_000).default(2_000),
});
export type JourneysConfig = z.infer<typeof JourneysEnv>;
export const SERVICE = 'journeys';
export const JOURNEYS_CONFIG = Symbol('JOURNEYS_CONFIG');
