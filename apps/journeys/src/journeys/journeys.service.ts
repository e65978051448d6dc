import {
  KeywayError,
  newId,
  toPage,
  type ConversionBody,
  type CreateJourneyBody,
  type JourneyListQuery,
  type JourneyView,
  type Page,
  type TouchpointBody,
  type UpdateJourneyBody,
} from '@keyway/contracts';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import type { z } from 'zod';
import { ConversionEntity, JourneyEntity, TouchpointEntity } from './journey.entity';

type TouchpointView = JourneyView['touchpoints'][number];
type ConversionView = JourneyView['conversions'][number];

const FOREIGN_KEY_VIOLATION = '23503';

function touchpointView(t: TouchpointEntity): TouchpointView {
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

/** `touchpoints` and `conversions` must already be in time order. */
function view(j: JourneyEntity, touchpoints: TouchpointEntity[], conversions: ConversionEntity[]): JourneyView {
  const tps = touchpoints.map(touchpointView);
  return {
    id: j.id,
    contact_id: j.contact_id,
    anonymous_id: j.anonymous_id,
    touchpoints: tps,
    conversions: conversions.map(conversionView),
    first_touch: tps[0]?.occurred_at ?? null,
    last_touch: tps[tps.length - 1]?.occurred_at ?? null,
    created_at: j.created_at.toISOString(),
  };
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
  constructor(@InjectDataSource() private readonly ds: DataSource) {}

  async list(tenantId: string, q: z.infer<typeof JourneyListQuery>): Promise<Page<JourneyView>> {
    const qb = this.ds.getRepository(JourneyEntity).createQueryBuilder('j').where('j.tenant_id = :tenantId', { tenantId });
    if (q.contact_id !== undefined) qb.andWhere('j.contact_id = :contactId', { contactId: q.contact_id });
    const [rows, total] = await qb
      .orderBy('j.created_at', 'DESC')
      .addOrderBy('j.id', 'DESC')
      .skip((q.page - 1) * q.pageSize)
      .take(q.pageSize)
      .getManyAndCount();
    return toPage(await this.views(this.ds.manager, rows), total, q);
  }

  async get(tenantId: string, id: string): Promise<JourneyView> {
    return this.load(this.ds.manager, tenantId, id);
  }

  async create(tenantId: string, body: z.infer<typeof CreateJourneyBody>): Promise<JourneyView> {
    return this.ds.transaction(async (m) => {
      const journey = m.create(JourneyEntity, {
        id: newId('journey'),
        tenant_id: tenantId,
        contact_id: body.contact_id ?? null,
        anonymous_id: body.anonymous_id ?? null,
        created_at: new Date(),
      });
      await m.insert(JourneyEntity, journey);
      const touchpoints = (body.touchpoints ?? []).map((t) => touchpointEntity(m, journey.id, t));
      if (touchpoints.length > 0) await m.save(TouchpointEntity, touchpoints, { reload: false });
      return this.load(m, tenantId, journey.id);
    });
  }

  async update(tenantId: string, id: string, body: z.infer<typeof UpdateJourneyBody>): Promise<JourneyView> {
    return this.ds.transaction(async (m) => {
      const journey = await m.findOne(JourneyEntity, { where: { tenant_id: tenantId, id }, lock: { mode: 'pessimistic_write' } });
      if (!journey) throw notFound(id);
      if (body.contact_id !== undefined) journey.contact_id = body.contact_id;
      if (body.anonymous_id !== undefined) journey.anonymous_id = body.anonymous_id;
      // The body schema can't see the stored journey, so "at least one of them" is checked here.
      if (journey.contact_id === null && journey.anonymous_id === null) {
        throw new KeywayError('invalid_request', 'A journey needs a contact_id or an anonymous_id', {
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
    if (!result.affected) throw notFound(id);
  }

  async addTouchpoint(tenantId: string, id: string, body: z.infer<typeof TouchpointBody>): Promise<JourneyView> {
    return this.ds.transaction(async (m) => {
      await this.assertJourney(m, tenantId, id);
      await this.whileJourneyExists(id, m.save(TouchpointEntity, touchpointEntity(m, id, body), { reload: false }));
      return this.load(m, tenantId, id);
    });
  }

  async addConversion(tenantId: string, id: string, body: z.infer<typeof ConversionBody>): Promise<JourneyView> {
    return this.ds.transaction(async (m) => {
      await this.assertJourney(m, tenantId, id);
      const conversion = m.create(ConversionEntity, {
        id: newId('conversion'),
        journey_id: id,
        name: body.name,
        occurred_at: new Date(body.occurred_at),
        value: body.value ?? null,
      });
      await this.whileJourneyExists(id, m.insert(ConversionEntity, conversion));
      return this.load(m, tenantId, id);
    });
  }

  private async assertJourney(m: EntityManager, tenantId: string, id: string): Promise<void> {
    if (!(await m.existsBy(JourneyEntity, { tenant_id: tenantId, id }))) throw notFound(id);
  }

  /** A journey deleted between our check and the insert surfaces as a foreign-key violation. */
  private async whileJourneyExists(id: string, insert: Promise<unknown>): Promise<void> {
    try {
      await insert;
    } catch (err) {
      if ((err as { driverError?: { code?: string } }).driverError?.code === FOREIGN_KEY_VIOLATION) throw notFound(id);
      throw err;
    }
  }

  private async load(m: EntityManager, tenantId: string, id: string): Promise<JourneyView> {
    const journey = await m.findOneBy(JourneyEntity, { tenant_id: tenantId, id });
    if (!journey) throw notFound(id);
    const [one] = await this.views(m, [journey]);
    if (!one) throw notFound(id);
    return one;
  }

  /** Two queries for any number of journeys, each answered in time order (ties in insertion order). */
  private async views(m: EntityManager, journeys: JourneyEntity[]): Promise<JourneyView[]> {
    if (journeys.length === 0) return [];
    const ids = journeys.map((j) => j.id);
    const [touchpoints, conversions] = await Promise.all([
      m
        .createQueryBuilder(TouchpointEntity, 't')
        .where('t.journey_id = ANY(:ids)', { ids })
        .orderBy('t.occurred_at', 'ASC')
        .addOrderBy('t.seq', 'ASC')
        .getMany(),
      m
        .createQueryBuilder(ConversionEntity, 'c')
        .where('c.journey_id = ANY(:ids)', { ids })
        .orderBy('c.occurred_at', 'ASC')
        .addOrderBy('c.seq', 'ASC')
        .getMany(),
    ]);
    const tpByJourney = groupBy(touchpoints);
    const cvByJourney = groupBy(conversions);
    return journeys.map((j) => view(j, tpByJourney.get(j.id) ?? [], cvByJourney.get(j.id) ?? []));
  }
}

function notFound(id: string): KeywayError {
  return new KeywayError('not_found', `No journey ${id}`);
}
