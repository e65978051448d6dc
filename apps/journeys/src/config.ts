import { BaseEnv } from '@keyway/runtime';
import type { z } from 'zod';

export const JourneysEnv = BaseEnv;
export type JourneysConfig = z.infer<typeof JourneysEnv>;
export const SERVICE = 'journeys';
