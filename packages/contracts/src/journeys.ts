import { z } from 'zod';
import { PageQuery } from './pagination';

export const TouchpointBody = z.strictObject({
  type: z.enum(['page_view', 'form_submit', 'campaign', 'custom']),
  occurred_at: z.iso.datetime({ offset: true }),
  url: z.string().max(2048).optional(),
  source: z.string().max(200).optional(),
  medium: z.string().max(200).optional(),
  campaign: z.string().max(200).optional(),
  properties: z.record(z.string(), z.unknown()).optional(),
});
export const ConversionBody = z.strictObject({
  name: z.string().trim().min(1).max(200),
  occurred_at: z.iso.datetime({ offset: true }),
  value: z.number().optional(),
});
export const CreateJourneyBody = z
  .strictObject({
    contact_id: z.string().optional(),
    anonymous_id: z.string().min(1).max(200).optional(),
    touchpoints: z.array(TouchpointBody).max(500).optional(),
  })
  .refine((b) => b.contact_id !== undefined || b.anonymous_id !== undefined, {
    message: 'give contact_id or anonymous_id',
  })
  // The refine above, for the OpenAPI document (zod cannot tell JSON Schema what a refine does).
  .meta({ anyOf: [{ required: ['contact_id'] }, { required: ['anonymous_id'] }] });
export const UpdateJourneyBody = z
  .strictObject({
    contact_id: z.string().nullable().optional(),
    anonymous_id: z.string().min(1).max(200).nullable().optional(),
  })
  .refine((b) => Object.keys(b).length > 0, { message: 'give at least one field to change' });
export const JourneyListQuery = PageQuery.extend({ contact_id: z.string().optional() });

export const JourneyView = z.object({
  id: z.string(),
  contact_id: z.string().nullable(),
  anonymous_id: z.string().nullable(),
  touchpoints: z.array(TouchpointBody.extend({ id: z.string() })),
  conversions: z.array(ConversionBody.extend({ id: z.string() })),
  first_touch: z.string().nullable(),
  last_touch: z.string().nullable(),
  created_at: z.string(),
});
export type JourneyView = z.infer<typeof JourneyView>;
