import { z } from 'zod';
import { Scope } from './keys';

/** Most buckets one usage query may return (DESIGN, Sizes). */
export const USAGE_MAX_BUCKETS = 1440;
export const UsageInterval = z.enum(['minute', 'hour', 'day']);
export type UsageInterval = z.infer<typeof UsageInterval>;

/** `GET /v1/keys/{id}/usage?from&to&interval`. */
export const UsageQuery = z.strictObject({
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
  interval: UsageInterval.default('hour'),
});
export type UsageQuery = z.infer<typeof UsageQuery>;

export const UsageBucket = z.object({ start: z.string(), requests: z.number().int(), rate_limited: z.number().int() });
export const UsageReport = z.object({ data: z.array(UsageBucket) });
export type UsageReport = z.infer<typeof UsageReport>;

/** `GET /v1/keys/{id}/scope-report?days=30`. */
export const ScopeReportQuery = z.strictObject({ days: z.coerce.number().int().min(1).max(35).default(30) });
export const ScopeReport = z.object({
  granted: z.array(Scope),
  used: z.array(z.object({ scope: Scope, last_used_at: z.string() })),
  unused: z.array(Scope),
  /** From when the usage data behind this report is complete. */
  complete_since: z.string().nullable(),
});
export type ScopeReport = z.infer<typeof ScopeReport>;
