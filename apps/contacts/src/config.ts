import { BaseEnv } from '@keyway/runtime';
import type { z } from 'zod';

export const ContactsEnv = BaseEnv;
export type ContactsConfig = z.infer<typeof ContactsEnv>;
export const SERVICE = 'contacts';
