import { z } from 'zod';
import { ROLES } from './roles';

export const MemberRole = z.enum(ROLES);
const Email = z.email().max(320).transform((e) => e.toLowerCase());
const Password = z.string().min(8).max(1024);
const MemberName = z.string().regex(/\S/, 'must not be blank').trim().min(1).max(200);
export const CreateUserBody = z.strictObject({
  name: MemberName,
  email: Email,
  password: Password,
  /** Defaults to `viewer`, the least a member can be. Giving a role is a grant of its scopes. */
  role: MemberRole.optional(),
});
export const UpdateUserBody = z
  .strictObject({
    name: MemberName.optional(),
    email: Email.optional(),
    password: Password.optional(),
    role: MemberRole.optional(),
    /** A signed-in member changing their own password proves they know the current one. */
    current_password: z.string().min(1).max(1024).optional(),
  })
  .refine((b) => Object.keys(b).some((k) => k !== 'current_password'), { message: 'give at least one field to change' });
export type UpdateUserBody = z.infer<typeof UpdateUserBody>;
export const UserView = z.object({
  id: z.string(),
  name: z.string(),
  email: z.string(),
  role: MemberRole,
  created_at: z.string(),
  updated_at: z.string(),
});
export type UserView = z.infer<typeof UserView>;
