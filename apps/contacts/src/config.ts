import { BaseEnv } from '@keyway/runtime';
import { z } from 'zod';

export const ContactsEnv = BaseEnv.extend({
  /** How often the domain-event relay polls when no NOTIFY woke it. */
  RELAY_POLL_MS: z.coerce.number().int().min(10).max(60_000).default(500),
  /** Off only for a replica that must not relay (any number may: one holds the lead at a time). */
  RELAY_ENABLED: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
});
export type ContactsConfig = z.infer<typeof ContactsEnv>;
export const SERVICE = 'contacts';
export const CONTACTS_CONFIG = Symbol('CONTACTS_CONFIG');
