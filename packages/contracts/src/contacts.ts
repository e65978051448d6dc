import { z } from 'zod';
import { PageQuery } from './pagination';
import { freeFormObject } from './sizes';

const Properties = freeFormObject(z.string().min(1).max(100));
export const ContactType = z.enum(['user', 'lead', 'partner']);

export const CreateContactBody = z.strictObject({
  type: ContactType,
  name: z.string().regex(/\S/, 'must not be blank').trim().min(1).max(200),
  email: z.email().max(320),
  external_id: z.string().min(1).max(200).nullish(),
  account_id: z.string().nullish(),
  properties: Properties.default({}),
});
export const UpdateContactBody = z
  .strictObject({
    type: ContactType.optional(),
    name: z.string().regex(/\S/, 'must not be blank').trim().min(1).max(200).optional(),
    email: z.email().max(320).optional(),
    external_id: z.string().min(1).max(200).nullable().optional(),
    account_id: z.string().nullable().optional(),
    properties: Properties.optional(),
  })
  .refine((b) => Object.keys(b).length > 0, { message: 'give at least one field to change' });
export const ContactListQuery = PageQuery.extend({
  q: z.string().max(200).optional(),
  type: ContactType.optional(),
  account_id: z.string().optional(),
});
export const ContactView = z.object({
  id: z.string(),
  type: ContactType,
  name: z.string(),
  email: z.string(),
  external_id: z.string().nullable(),
  account_id: z.string().nullable(),
  properties: Properties,
  created_at: z.string(),
  updated_at: z.string(),
});
export type ContactView = z.infer<typeof ContactView>;

export const CreateAccountBody = z.strictObject({
  name: z.string().regex(/\S/, 'must not be blank').trim().min(1).max(200),
  domain: z.string().min(1).max(253).nullish(),
  properties: Properties.default({}),
});
export const UpdateAccountBody = z
  .strictObject({
    name: z.string().regex(/\S/, 'must not be blank').trim().min(1).max(200).optional(),
    domain: z.string().min(1).max(253).nullable().optional(),
    properties: Properties.optional(),
  })
  .refine((b) => Object.keys(b).length > 0, { message: 'give at least one field to change' });
export const AccountView = z.object({
  id: z.string(),
  name: z.string(),
  domain: z.string().nullable(),
  properties: Properties,
  created_at: z.string(),
  updated_at: z.string(),
});
export type AccountView = z.infer<typeof AccountView>;

/**
 * Service-to-service (see SERVICE_CALLS): does this contact exist in this tenant? Journeys asks
 * before it stores a `contact_id`, since it cannot read contacts' tables.
 */
export const ContactExistsRequest = z.strictObject({
  tenant_id: z.string().min(1).max(100),
  id: z.string().min(1).max(100),
});
export type ContactExistsRequest = z.infer<typeof ContactExistsRequest>;
export const ContactExistsReply = z.strictObject({ exists: z.boolean() });
export type ContactExistsReply = z.infer<typeof ContactExistsReply>;
