import { jsonBytes, type ConversionView, type JourneyView, type TouchpointView, type TouchView } from '@keyway/contracts';
import type { ConversionEntity, JourneyEntity } from './journey.entity';

/** The attribution columns of a touchpoint, as `first_touch` / `last_touch` show them. */
export interface TouchRow {
  journey_id: string;
  type: string;
  occurred_at: Date;
  url: string | null;
  source: string | null;
  medium: string | null;
  campaign: string | null;
}
export const TOUCH_COLUMNS = 'journey_id, type, occurred_at, url, source, medium, campaign';

/** A touchpoints row as read with raw SQL (timestamptz and jsonb already parsed by pg). */
export interface TouchpointRow extends TouchRow {
  id: string;
  properties: Record<string, unknown> | null;
}
export const TOUCHPOINT_COLUMNS = `id, ${TOUCH_COLUMNS}, properties`;

/** Every field is answered; one that was not given is `null` (CHANGELOG: it used to be left out). */
export function touchpointView(t: TouchpointRow): TouchpointView {
  return {
    id: t.id,
    type: t.type as TouchpointView['type'],
    occurred_at: t.occurred_at.toISOString(),
    url: t.url,
    source: t.source,
    medium: t.medium,
    campaign: t.campaign,
    properties: t.properties,
  };
}

function touchView(t: TouchRow): TouchView {
  return { type: t.type as TouchView['type'], source: t.source, medium: t.medium, campaign: t.campaign, url: t.url, occurred_at: t.occurred_at.toISOString() };
}

export function conversionView(c: ConversionEntity): ConversionView {
  return { id: c.id, name: c.name, occurred_at: c.occurred_at.toISOString(), value: c.value };
}

/**
 * The latest of `items` (in time order) whose JSON, commas included, fits in `budget` bytes: a
 * contiguous tail, so what is left out is always older than what is in.
 */
function latestThatFit<T>(items: T[], budget: number): { kept: T[]; bytes: number } {
  let bytes = 0;
  let k = 0;
  for (let i = items.length - 1; i >= 0; i--) {
    const size = jsonBytes(items[i]) + (k > 0 ? 1 : 0);
    if (bytes + size > budget) break;
    bytes += size;
    k++;
  }
  return { kept: items.slice(items.length - k), bytes };
}

/** What journeyView() needs of one journey besides its row. */
export interface Loaded {
  /** Its latest touchpoints, at most JOURNEY_EMBEDDED_TOUCHPOINTS, newest first. */
  latest: TouchpointRow[];
  /** Its earliest touchpoint, when not among `latest`. */
  earliest: TouchRow | undefined;
  conversions: ConversionEntity[];
}

/**
 * A journey's answer within `budget` bytes of JSON (DESIGN "Sizes"): the rest first, then its
 * conversions (bounded by JOURNEY_MAX_CONVERSIONS, so all of them in a journey's own answer), then
 * as many of its latest touchpoints as fit. The totals say what was left out; the touchpoints page
 * holds them all.
 */
export function journeyView(j: JourneyEntity, loaded: Loaded, budget: number): JourneyView {
  const newest = loaded.latest[0];
  const oldest = loaded.earliest ?? loaded.latest[loaded.latest.length - 1];
  const shell: JourneyView = {
    id: j.id,
    contact_id: j.contact_id,
    anonymous_id: j.anonymous_id,
    touchpoints: [],
    touchpoints_total: j.touchpoint_count,
    conversions: [],
    conversions_total: j.conversion_count,
    first_touch: oldest ? touchView(oldest) : null,
    last_touch: newest ? touchView(newest) : null,
    created_at: j.created_at.toISOString(),
  };
  let room = budget - jsonBytes(shell);
  const conversions = latestThatFit(loaded.conversions.map(conversionView), room);
  room -= conversions.bytes;
  const touchpoints = latestThatFit(loaded.latest.map(touchpointView).reverse(), room);
  return { ...shell, touchpoints: touchpoints.kept, conversions: conversions.kept };
}
