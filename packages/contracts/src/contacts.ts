import { z } from 'zod';
import { ErrorBody } from './errors';
import { Environment } from './keys';
import { PageQuery } from './pagination';
import { freeFormObject } from './sizes';

const Properties = freeFormObject(z.string().min(1).max(100));
export const ContactType = z.enum(['user', 'lead', 'partner']);

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** Text Postgres can store: no NUL, no lone surrogate (either was a 500). */
const storable = (s: z.ZodString) => s.refine((v) => !v.includes('\u0000') && !LONE_SURROGATE.test(v), { message: 'must be valid Unicode without NUL characters' });
const text = (max: number) => storable(z.string().min(1).max(max));
const Name = storable(z.string().regex(/\S/, 'must not be blank').trim().min(1).max(200));
const Email = z.email().max(320);
/** The customer's own id for a record: unique per tenant and mode. */
const ExternalId = text(200);

export const CreateContactBody = z.strictObject({
  type: ContactType,
  name: Name,
  email: Email,
  external_id: ExternalId.nullish(),
  account_id: z.string().max(100).nullish(),
  properties: Properties.default({}),
});
export const UpdateContactBody = z
  .strictObject({
    type: ContactType.optional(),
    name: Name.optional(),
    email: Email.optional(),
    external_id: ExternalId.nullable().optional(),
    account_id: z.string().max(100).nullable().optional(),
    properties: Properties.optional(),
  })
  .refine((b) => Object.keys(b).length > 0, { message: 'give at least one field to change' });
export const ContactListQuery = PageQuery.extend({
  q: z.string().max(200).optional(),
  type: ContactType.optional(),
  account_id: z.string().max(100).optional(),
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
  name: Name,
  domain: text(253).nullish(),
  external_id: ExternalId.nullish(),
  properties: Properties.default({}),
});
export const UpdateAccountBody = z
  .strictObject({
    name: Name.optional(),
    domain: text(253).nullable().optional(),
    external_id: ExternalId.nullable().optional(),
    properties: Properties.optional(),
  })
  .refine((b) => Object.keys(b).length > 0, { message: 'give at least one field to change' });
export const AccountView = z.object({
  id: z.string(),
  name: z.string(),
  domain: z.string().nullable(),
  external_id: z.string().nullable(),
  properties: Properties,
  created_at: z.string(),
  updated_at: z.string(),
});
export type AccountView = z.infer<typeof AccountView>;

// --- Upserts by the customer's id --------------------------------------------------------------

/** `PUT /v1/{contacts,accounts}/by-external-id/:external_id`. */
export const ExternalIdParams = z.object({ external_id: ExternalId });

/**
 * `PUT /v1/contacts/by-external-id/{external_id}`: the whole record. It replaces the contact with
 * that external id (a field left out is reset: `account_id` to null, `properties` to `{}`), or
 * creates it.
 */
export const UpsertContactBody = z.strictObject({
  type: ContactType,
  name: Name,
  email: Email,
  account_id: z.string().max(100).nullish(),
  properties: Properties.default({}),
});
/** `PUT /v1/accounts/by-external-id/{external_id}`: the whole record, as for contacts. */
export const UpsertAccountBody = z.strictObject({
  name: Name,
  domain: text(253).nullish(),
  properties: Properties.default({}),
});

/**
 * What the services answer an upsert: the record, and the HTTP status the gateway answers with,
 * `201` when the upsert created it, `200` when it replaced it. The gateway sends `body` as the
 * response body and `status` as the status; `status` never reaches the client.
 */
function upsertReplyOf<T extends z.ZodType>(view: T) {
  return z.object({ status: z.union([z.literal(200), z.literal(201)]), body: view });
}
export const ContactUpsertReply = upsertReplyOf(ContactView);
export type ContactUpsertReply = z.infer<typeof ContactUpsertReply>;
export const AccountUpsertReply = upsertReplyOf(AccountView);
export type AccountUpsertReply = z.infer<typeof AccountUpsertReply>;

export const CONTACT_BATCH_MAX = 100;

/** One item of `POST /v1/contacts/batch`: an upsert by `external_id`, the record whole. */
export const ContactBatchItem = UpsertContactBody.extend({ external_id: ExternalId });
export type ContactBatchItem = z.infer<typeof ContactBatchItem>;

/**
 * `POST /v1/contacts/batch`. Each item is validated on its own by the service (a bad item fails
 * alone, with its `invalid_request` in its result), so the body only bounds the list here.
 */
export const ContactBatchBody = z.strictObject({
  items: z
    .array(z.unknown().meta({ description: 'A ContactBatchItem: `{external_id, type, name, email, account_id?, properties?}`' }))
    .min(1)
    .max(CONTACT_BATCH_MAX),
});

/**
 * One item's outcome, in the order sent: `201` created or `200` replaced, with the contact's `id`;
 * otherwise the status its error would have alone (`400`, `409`) and the error in the documented
 * shape `{error, code, details?}`. A batch answers ids, not the full records (DESIGN "Sizes").
 */
export const ContactBatchItemResult = z.object({
  status: z.number().int(),
  id: z.string().optional(),
  error: ErrorBody.optional(),
});
export type ContactBatchItemResult = z.infer<typeof ContactBatchItemResult>;
export const ContactBatchResult = z.object({ results: z.array(ContactBatchItemResult) });
export type ContactBatchResult = z.infer<typeof ContactBatchResult>;

// --- Service-to-service ------------------------------------------------------------------------

/**
 * Service-to-service (see SERVICE_CALLS): does this contact exist in this tenant and mode?
 * Journeys asks before it stores a `contact_id`, since it cannot read contacts' tables.
 * `environment` is the mode of the request journeys serves (`live` when absent, as for a
 * RequestContext): a test contact does not exist for a live journey, nor the reverse.
 */
export const ContactExistsRequest = z.strictObject({
  tenant_id: z.string().min(1).max(100),
  id: z.string().min(1).max(100),
  environment: Environment.optional(),
});
export type ContactExistsRequest = z.infer<typeof ContactExistsRequest>;
export const ContactExistsReply = z.strictObject({ exists: z.boolean() });
export type ContactExistsReply = z.infer<typeof ContactExistsReply>;
