import { z } from 'zod';
import { Scope } from './keys';

export const CreateTenantBody = z.strictObject({ name: z.string().trim().min(1).max(200) });
export type CreateTenantBody = z.infer<typeof CreateTenantBody>;

export const CreatedTenant = z.object({
  tenant: z.object({ id: z.string(), name: z.string() }),
  root_key: z.object({ id: z.string(), prefix: z.string(), key: z.string(), scopes: z.array(Scope) }),
});
export type CreatedTenant = z.infer<typeof CreatedTenant>;
