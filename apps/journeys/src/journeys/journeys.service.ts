import {
  JOURNEY_EMBEDDED_TOUCHPOINTS,
  JOURNEY_MAX_CONVERSIONS,
  JOURNEY_MAX_TOUCHPOINTS,
  REPLY_MAX_BYTES,
  jsonBytes,
  newId,
  toPage,
  type ConversionBody,
  type CreateJourneyBody,
  type JourneyListQuery,
  type JourneyView,
  type Page,
  type PageQuery,
  type TouchpointBody,
  type TouchpointView,
  type UpdateJourneyBody,
} from '@keyway/contracts';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import type { z } from 'zod';
import { ContactsClient } from '../contacts/contacts.client';
import { ConversionEntity, JourneyEntity, TouchpointEntity } from './journey.entity';
import { JourneyError } from './journeys.errors';

type ConversionView = JourneyView['conversions'][number];

/** A touchpoints row as read with raw SQL (timestamptz and jsonb already parsed by pg). */
interface TouchpointRow {
  id: string;
  journey_id: string;
  type: string;
  occurred_at: Date;
  url: string | null;
  source: string | null;
  medium: string | null;
  campaign: string | null;
  properties: Record<string, unknown> | null;
}
const TOUCHPOINT_COLUMNS = 'id, journey_id, type, occurred_at, url, source, medium, campaign, properties';

/** Room in a list's budget for the page's own fields (`page`, `total`, …, later a cursor). */
const PAGE_FIELDS_BYTES = 256;

function touchpointView(t: TouchpointRow): TouchpointView {
  // The contract's touchpoint fields are optional, not nullable: an unset field is left out.
  const v: TouchpointView = { id: t.id, type: t.type as TouchpointView['type'], occurred_at: t.occurred_at.toISOString() };
  if (t.url !== null) v.url = t.url;
  if (t.source !== null) v.source = t.source;
  if (t.medium !== null) v.medium = t.medium;
  if (t.campaign !== null) v.campaign = t.campaign;
  if (t.properties !== null) v.properties = t.properties;
  return v;
}

function conversionView(c: ConversionEntity): ConversionView {
  const v: ConversionView = { id: c.id, name: c.name, occurred_at: c.occurred_at.toISOString() };
  if (c.value !== null) v.value = c.value;
  return v;
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

/** What views() needs of one journey besides its row. */
interface Loaded {
  /** Its latest touchpoints, at most JOURNEY_EMBEDDED_TOUCHPOINTS, newest first. */
  latest: TouchpointRow[];
  /** Its earliest touchpoint's time, when not among `latest`. */
  earliest: Date | undefined;
  conversions: ConversionEntity[];
}

/**
 * A journey's answer within `budget` bytes of JSON (DESIGN "Sizes"): the rest first, then its
 * conversions (bounded by JOURNEY_MAX_CONVERSIONS, so all of them in a journey's own answer), then
 * as many of its latest touchpoints as fit. The totals say what was left out; the touchpoints page
 * holds them all.
 */
function view(j: JourneyEntity, loaded: Loaded, budget: number): JourneyView {
  const newest = loaded.latest[0];
  const oldest = loaded.earliest ?? loaded.latest[loaded.latest.length - 1]?.occurred_at;
  const shell: JourneyView = {
    id: j.id,
    contact_id: j.contact_id,
    anonymous_id: j.anonymous_id,
    touchpoints: [],
    touchpoints_total: j.touchpoint_count,
    conversions: [],
    conversions_total: j.conversion_count,
    first_touch: oldest?.toISOString() ?? null,
    last_touch: newest?.occurred_at.toISOString() ?? null,
    created_at: j.created_at.toISOString(),
  };
  let room = budget - jsonBytes(shell);
  const conversions = latestThatFit(loaded.conversions.map(conversionView), room);
  room -= conversions.bytes;
  const touchpoints = latestThatFit(loaded.latest.map(touchpointView).reverse(), room);
  return { ...shell, touchpoints: touchpoints.kept, conversions: conversions.kept };
}

function touchpointEntity(m: EntityManager, journeyId: string, t: z.infer<typeof TouchpointBody>): TouchpointEntity {
  return m.create(TouchpointEntity, {
    id: newId('touchpoint'),
    journey_id: journeyId,
    type: t.type,
    occurred_at: new Date(t.occurred_at),
    url: t.url ?? null,
    source: t.source ?? null,
    medium: t.medium ?? null,
    campaign: t.campaign ?? null,
    properties: t.properties ?? null,
  });
}

@Injectable()
export class JourneysService {
  constructor(
    @InjectDataSource() private readonly ds: DataSource,
    private readonly contacts: ContactsClient,
  ) {}

  async list(tenantId: string, q: z.infer<typeof JourneyListQuery>): Promise<Page<JourneyView>> {
    const qb = this.ds.getRepository(JourneyEntity).createQueryBuilder('j').where('j.tenant_id = :tenantId', { tenantId });
    if (q.contact_id !== undefined) qb.andWhere('j.contact_id = :contactId', { contactId: q.contact_id });
    const [rows, total] = await qb
      .orderBy('j.created_at', 'DESC')
      .addOrderBy('j.id', 'DESC')
      .skip((q.page - 1) * q.pageSize)
      .take(q.pageSize)
      .getManyAndCount();
    // Each journey of the page gets an equal share of the answer: 50 journeys of 100 touchpoints
    // with 16 KiB of properties each would be 80 MB.
    const share = rows.length > 0 ? Math.floor((REPLY_MAX_BYTES - PAGE_FIELDS_BYTES) / rows.length) - 1 : 0;
    return toPage(await this.views(this.ds.manager, rows, share), total, q);
  }

  async get(tenantId: string, id: string): Promise<JourneyView> {
    return this.load(this.ds.manager, tenantId, id);
  }

  /** Time order, ties in arrival order; `total` is the journey's count, read in the same snapshot. */
  async listTouchpoints(tenantId: string, id: string, q: PageQuery): Promise<Page<TouchpointView>> {
    return this.ds.transaction('REPEATABLE READ', async (m) => {
      const journey = await m.findOneBy(JourneyEntity, { tenant_id: tenantId, id });
      if (!journey) throw JourneyError.notFound(id);
      const rows: TouchpointRow[] = await m.query(
        `SELECT ${TOUCHPOINT_COLUMNS} FROM touchpoints WHERE journey_id = $1 ORDER BY occurred_at, seq OFFSET $2 LIMIT $3`,
        [id, (q.page - 1) * q.pageSize, q.pageSize],
      );
      return toPage(rows.map(touchpointView), journey.touchpoint_count, q);
    });
  }

  async create(tenantId: string, body: z.infer<typeof CreateJourneyBody>): Promise<JourneyView> {
    // Before the transaction: no connection or lock is held while contacts answers.
    if (body.contact_id !== undefined) await this.contacts.assertContact(tenantId, body.contact_id);
    return this.ds.transaction(async (m) => {
      const journey = m.create(JourneyEntity, {
        id: newId('journey'),
        tenant_id: tenantId,
        contact_id: body.contact_id ?? null,
        anonymous_id: body.anonymous_id ?? null,
        created_at: new Date(),
      });
      await m.insert(JourneyEntity, journey);
      // At most 500 (the body's limit), far below JOURNEY_MAX_TOUCHPOINTS.
      const touchpoints = (body.touchpoints ?? []).map((t) => touchpointEntity(m, journey.id, t));
      if (touchpoints.length > 0) await m.save(TouchpointEntity, touchpoints, { reload: false });
      return this.load(m, tenantId, journey.id);
    });
  }

  async update(tenantId: string, id: string, body: z.infer<typeof UpdateJourneyBody>): Promise<JourneyView> {
    if (typeof body.contact_id === 'string') {
      // Another tenant's journey is not_found whatever the contact_id, as on every other path.
      await this.assertJourney(this.ds.manager, tenantId, id);
      await this.contacts.assertContact(tenantId, body.contact_id);
    }
    return this.ds.transaction(async (m) => {
      const journey = await m.findOne(JourneyEntity, { where: { tenant_id: tenantId, id }, lock: { mode: 'pessimistic_write' } });
      if (!journey) throw JourneyError.notFound(id);
      if (body.contact_id !== undefined) journey.contact_id = body.contact_id;
      if (body.anonymous_id !== undefined) journey.anonymous_id = body.anonymous_id;
      // The body schema can't see the stored journey, so "at least one of them" is checked here.
      if (journey.contact_id === null && journey.anonymous_id === null) {
        throw new JourneyError('invalid_request', 'A journey needs a contact_id or an anonymous_id', {
          details: [{ field: '(body)', message: 'contact_id and anonymous_id cannot both be null' }],
        });
      }
      await m.update(JourneyEntity, { tenant_id: tenantId, id }, { contact_id: journey.contact_id, anonymous_id: journey.anonymous_id });
      return this.load(m, tenantId, id);
    });
  }

  /** Touchpoints and conversions go with it (ON DELETE CASCADE). */
  async remove(tenantId: string, id: string): Promise<void> {
    const result = await this.ds.getRepository(JourneyEntity).delete({ tenant_id: tenantId, id });
    if (!result.affected) throw JourneyError.notFound(id);
  }

  async addTouchpoint(tenantId: string, id: string, body: z.infer<typeof TouchpointBody>): Promise<JourneyView> {
    return this.ds.transaction(async (m) => {
      const journey = await this.lockJourney(m, tenantId, id);
      if (journey.touchpoint_count >= JOURNEY_MAX_TOUCHPOINTS) {
        throw JourneyError.full('touchpoints', JOURNEY_MAX_TOUCHPOINTS);
      }
      await m.save(TouchpointEntity, touchpointEntity(m, id, body), { reload: false });
      return this.load(m, tenantId, id);
    });
  }

  async addConversion(tenantId: string, id: string, body: z.infer<typeof ConversionBody>): Promise<JourneyView> {
    return this.ds.transaction(async (m) => {
      const journey = await this.lockJourney(m, tenantId, id);
      if (journey.conversion_count >= JOURNEY_MAX_CONVERSIONS) {
        throw JourneyError.full('conversions', JOURNEY_MAX_CONVERSIONS);
      }
      const conversion = m.create(ConversionEntity, {
        id: newId('conversion'),
        journey_id: id,
        name: body.name,
        occurred_at: new Date(body.occurred_at),
        value: body.value ?? null,
      });
      await m.insert(ConversionEntity, conversion);
      return this.load(m, tenantId, id);
    });
  }

  /**
   * The row lock makes the cap exact under concurrency (each add sees the count the one before it
   * left) and keeps a concurrent delete from landing between the check and the insert.
   */
  private async lockJourney(m: EntityManager, tenantId: string, id: string): Promise<JourneyEntity> {
    const journey = await m.findOne(JourneyEntity, { where: { tenant_id: tenantId, id }, lock: { mode: 'pessimistic_write' } });
    if (!journey) throw JourneyError.notFound(id);
    return journey;
  }

  private async assertJourney(m: EntityManager, tenantId: string, id: string): Promise<void> {
    if (!(await m.existsBy(JourneyEntity, { tenant_id: tenantId, id }))) throw JourneyError.notFound(id);
  }

  private async load(m: EntityManager, tenantId: string, id: string): Promise<JourneyView> {
    const journey = await m.findOneBy(JourneyEntity, { tenant_id: tenantId, id });
    if (!journey) throw JourneyError.notFound(id);
    const [one] = await this.views(m, [journey], REPLY_MAX_BYTES);
    if (!one) throw JourneyError.notFound(id);
    return one;
  }

  /**
   * Three queries for any number of journeys, each reading only what can be embedded: the latest
   * touchpoints of each (an index scan backwards, LIMIT per journey), the earliest of those that
   * have more, and the conversions (at most JOURNEY_MAX_CONVERSIONS each).
   */
  private async views(m: EntityManager, journeys: JourneyEntity[], budgetEach: number): Promise<JourneyView[]> {
    if (journeys.length === 0) return [];
    const ids = journeys.map((j) => j.id);
    const latest: TouchpointRow[] = await m.query(
      `SELECT t.* FROM unnest($1::text[]) AS j(id) CROSS JOIN LATERAL (
         SELECT ${TOUCHPOINT_COLUMNS} FROM touchpoints WHERE journey_id = j.id ORDER BY occurred_at DESC, seq DESC LIMIT $2) t`,
      [ids, JOURNEY_EMBEDDED_TOUCHPOINTS],
    );
    const latestBy = groupBy(latest);
    const longer = journeys.filter((j) => j.touchpoint_count > (latestBy.get(j.id)?.length ?? 0)).map((j) => j.id);
    const earliest: Array<{ journey_id: string; occurred_at: Date }> =
      longer.length === 0
        ? []
        : await m.query(
            `SELECT t.* FROM unnest($1::text[]) AS j(id) CROSS JOIN LATERAL (
               SELECT journey_id, occurred_at FROM touchpoints WHERE journey_id = j.id ORDER BY occurred_at, seq LIMIT 1) t`,
            [longer],
          );
    const earliestBy = new Map(earliest.map((r) => [r.journey_id, r.occurred_at]));
    const conversions = await m
      .createQueryBuilder(ConversionEntity, 'c')
      .where('c.journey_id = ANY(:ids)', { ids })
      .orderBy('c.occurred_at', 'ASC')
      .addOrderBy('c.seq', 'ASC')
      .getMany();
    const conversionsBy = groupBy(conversions);
    return journeys.map((j) =>
      view(j, { latest: latestBy.get(j.id) ?? [], earliest: earliestBy.get(j.id), conversions: conversionsBy.get(j.id) ?? [] }, budgetEach),
    );
  }
}

function groupBy<T extends { journey_id: string }>(rows: T[]): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const row of rows) {
    const list = out.get(row.journey_id);
    if (list) list.push(row);
    else out.set(row.journey_id, [row]);
  }
  return out;
}
