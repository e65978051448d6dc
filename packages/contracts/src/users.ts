import { z } from 'zod';

const Email = z.email().max(320).transform((e) => e.toLowerCase());
export const CreateUserBody = z.strictObject({
  name: z.string().regex(/\S/, 'must not be blank').trim().min(1).max(200),
  email: Email,
  password: z.string().min(8).max(1024),
});
export const UpdateUserBody = z
  .strictObject({
    name: z.string().regex(/\S/, 'must not be blank').trim().min(1).max(200).optional(),
    email: Email.optional(),
    password: z.string().min(8).max(1024).optional(),
  })
  .refine((b) => Object.keys(b).length > 0, { message: 'give at least one field to change' });
export const UserView = z.object({
  id: z.string(),
  name: z.string(),
  email: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type UserView = z.infer<typeof UserView>;
