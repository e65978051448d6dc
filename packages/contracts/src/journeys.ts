import { z } from 'zod';
import { PageQuery } from './pagination';
import { FreeFormObject, jsonBytes, TOUCHPOINT_MAX_BYTES } from './sizes';

/** An id of another service's record (a contact), bounded like every `:id`. */
const ContactRef = z.string().min(1).max(100);
const AnonymousId = z.string().min(1).max(200);

/** A touchpoint's fields as sent; an optional field may also be sent as `null` (absent). */
const TouchpointFields = z.strictObject({
  type: z.enum(['page_view', 'form_submit', 'campaign', 'custom']),
  occurred_at: z.iso.datetime({ offset: true }),
  url: z.string().max(2048).nullish(),
  source: z.string().max(200).nullish(),
  medium: z.string().max(200).nullish(),
  campaign: z.string().max(200).nullish(),
  properties: FreeFormObject.nullish(),
});
/**
 * A touchpoint as sent. Beyond each field's own limit, the whole is bounded (TOUCHPOINT_MAX_BYTES)
 * so that a page of 50 of the largest still fits in one NATS message.
 */
export const TouchpointBody = TouchpointFields.superRefine((t, ctx) => {
  const bytes = jsonBytes(t);
  if (bytes > TOUCHPOINT_MAX_BYTES) {
    ctx.addIssue({ code: 'custom', message: `a touchpoint takes at most ${TOUCHPOINT_MAX_BYTES} bytes as JSON; this one takes ${bytes}` });
  }
}).meta({ description: `A touchpoint; at most ${TOUCHPOINT_MAX_BYTES} bytes as compact UTF-8 JSON in all.` });
/** As answered: every optional field is present, `null` when it was not given. */
export const TouchpointView = z.object({
  id: z.string(),
  type: TouchpointFields.shape.type,
  occurred_at: z.string(),
  url: z.string().nullable(),
  source: z.string().nullable(),
  medium: z.string().nullable(),
  campaign: z.string().nullable(),
  properties: FreeFormObject.nullable(),
});
export type TouchpointView = z.infer<typeof TouchpointView>;

/** The attribution of a journey's earliest or latest touchpoint (`first_touch`, `last_touch`). */
export const TouchView = z.object({
  type: TouchpointFields.shape.type,
  source: z.string().nullable(),
  medium: z.string().nullable(),
  campaign: z.string().nullable(),
  url: z.string().nullable(),
  occurred_at: z.string(),
});
export type TouchView = z.infer<typeof TouchView>;

export const ConversionBody = z.strictObject({
  name: z.string().regex(/\S/, 'must not be blank').trim().min(1).max(200),
  occurred_at: z.iso.datetime({ offset: true }),
  value: z.number().nullish(),
});
/** As answered: `value` is `null` when it was not given. */
export const ConversionView = z.object({ id: z.string(), name: z.string(), occurred_at: z.string(), value: z.number().nullable() });
export type ConversionView = z.infer<typeof ConversionView>;

export const CreateJourneyBody = z
  .strictObject({
    contact_id: ContactRef.optional(),
    anonymous_id: AnonymousId.optional(),
    touchpoints: z.array(TouchpointBody).max(500).optional(),
  })
  .refine((b) => b.contact_id !== undefined || b.anonymous_id !== undefined, {
    message: 'a journey needs a visitor: give contact_id, anonymous_id, or both',
  })
  // The refine above, for the OpenAPI document (zod cannot tell JSON Schema what a refine does).
  .meta({ anyOf: [{ required: ['contact_id'] }, { required: ['anonymous_id'] }] });
export const UpdateJourneyBody = z
  .strictObject({
    contact_id: ContactRef.nullable().optional(),
    anonymous_id: AnonymousId.nullable().optional(),
  })
  .refine((b) => Object.keys(b).length > 0, { message: 'give at least one field to change' });
export const JourneyListQuery = PageQuery.extend({ contact_id: ContactRef.optional() });

export const JourneyView = z.object({
  id: z.string(),
  contact_id: z.string().nullable(),
  anonymous_id: z.string().nullable(),
  /**
   * The latest touchpoints in time order: at most JOURNEY_EMBEDDED_TOUCHPOINTS, and only as many
   * as fit in one message beside the rest of the answer. All of them: journeys.touchpoints.list.
   */
  touchpoints: z.array(TouchpointView),
  /** How many touchpoints the journey holds. */
  touchpoints_total: z.number().int().min(0),
  /** In time order; all of them in a journey's own answer, the latest that fit in a list's. */
  conversions: z.array(ConversionView),
  conversions_total: z.number().int().min(0),
  /** Its earliest touchpoint (time order, ties in arrival order), embedded or not; null without any. */
  first_touch: TouchView.nullable(),
  /** Its latest touchpoint; null without any. */
  last_touch: TouchView.nullable(),
  created_at: z.string(),
});
export type JourneyView = z.infer<typeof JourneyView>;

/**
 * A journey in its domain events: everything but the embedded touchpoints and conversions, so an
 * event stays small however large the journey (its totals and first and last touch say the rest).
 */
export const JourneySummary = JourneyView.omit({ touchpoints: true, conversions: true });
export type JourneySummary = z.infer<typeof JourneySummary>;
