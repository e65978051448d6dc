import {
  JOURNEY_EMBEDDED_TOUCHPOINTS,
  JOURNEY_MAX_CONVERSIONS,
  JOURNEY_MAX_TOUCHPOINTS,
  REPLY_MAX_BYTES,
  newId,
  type ConversionBody,
  type IdempotentReplay,
  type CreateJourneyBody,
  type JourneyListQuery,
  type JourneyView,
  type Page,
  type PageQuery,
  type TouchpointBody,
  type TouchpointView,
  type UpdateJourneyBody,
} from '@keyway/contracts';
import { fetchPage, idempotent, Keyset } from '@keyway/database';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import type { z } from 'zod';
import { idempotencyScope, type Caller } from '../caller';
import { assertContactLinkable } from '../contacts/contact-links';
import { ContactsClient } from '../contacts/contacts.client';
import { journeySummary, recordJourneyEvent } from '../events/journey-events';
import { IDEMPOTENCY_TABLE } from '../migrations/1764806520000-idempotency';
import { ConversionEntity, JourneyEntity, TouchpointEntity } from './journey.entity';
import { conversionView, journeyView, TOUCH_COLUMNS, TOUCHPOINT_COLUMNS, touchpointView, type TouchpointRow, type TouchRow } from './journey-views';
import { JourneyError } from './journeys.errors';

/** Room in a list's budget for the page's own fields (`page`, `total`, `next_cursor`, …). */
const PAGE_FIELDS_BYTES = 1_024;
/** Test journeys deleted per transaction by a purge: no transaction holds a whole tenant's rows. */
const PURGE_BATCH = 500;

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

/** Journeys lists: newest first; the id breaks ties between journeys created in the same instant. */
const JOURNEYS_KEYSET = new Keyset({
  list: 'journeys',
  columns: [
    { column: 'j.created_at', type: 'timestamptz' },
    { column: 'j.id', type: 'text' },
  ],
  direction: 'desc',
});
/** A journey's touchpoints: time order, arrival order (`seq`) between equal times. */
const TOUCHPOINTS_KEYSET = new Keyset({
  list: 'journeys.touchpoints',
  columns: [
    { column: 'occurred_at', type: 'timestamptz' },
    { column: 'seq', type: 'bigint' },
  ],
  direction: 'asc',
});

/** The journey's own row of the caller's tenant and mode: another's is not there at all. */
const mine = (caller: Caller, id: string) => ({ tenant_id: caller.tenantId, environment: caller.mode, id });

@Injectable()
export class JourneysService {
  constructor(
    @InjectDataSource() private readonly ds: DataSource,
    private readonly contacts: ContactsClient,
  ) {}

  /**
   * Newest first, by `page` or by `after` (a keyset cursor on (created_at, id): every page costs
   * what the first does, served by the (tenant_id, environment[, contact_id], created_at, id)
   * indexes). `hasMore` is exact; `total` is counted up to a bound, an estimate above it, flagged.
   */
  async list(caller: Caller, q: z.infer<typeof JourneyListQuery>): Promise<Page<JourneyView>> {
    const params: unknown[] = [caller.tenantId, caller.mode];
    let where = 'j.tenant_id = $1 AND j.environment = $2';
    if (q.contact_id !== undefined) {
      params.push(q.contact_id);
      where += ' AND j.contact_id = $3';
    }
    const page = await fetchPage<JourneyEntity>(this.ds.manager, {
      select: 'j.*',
      from: 'journeys j',
      where,
      params,
      keyset: JOURNEYS_KEYSET,
      query: q,
      // A cursor continues only the list it came from: this mode's, with these filters.
      filters: { mode: caller.mode, contact_id: q.contact_id ?? null },
    });
    return { ...page, data: await this.views(this.ds.manager, page.data, listShare(page.data.length)) };
  }

  async get(caller: Caller, id: string): Promise<JourneyView> {
    return this.load(this.ds.manager, caller, id);
  }

  /**
   * Time order, ties in arrival order, by `page` or by `after` (a cursor on (occurred_at, seq),
   * bound to this journey). `total` is the journey's own count (exact, never counted), read in the
   * same snapshot as the page.
   */
  async listTouchpoints(caller: Caller, id: string, q: PageQuery): Promise<Page<TouchpointView>> {
    return this.ds.transaction('REPEATABLE READ', async (m) => {
      const journey = await m.findOneBy(JourneyEntity, mine(caller, id));
      if (!journey) throw JourneyError.notFound(id);
      const filters = { journey_id: id };
      const params: unknown[] = [id];
      let where = 'journey_id = $1';
      if (q.after !== undefined) {
        const c = TOUCHPOINTS_KEYSET.condition(TOUCHPOINTS_KEYSET.decode(q.after, filters), 2);
        where += ` AND ${c.sql}`;
        params.push(...c.params);
      }
      params.push(q.after === undefined ? (q.page - 1) * q.pageSize : 0, q.pageSize + 1);
      const found: Array<TouchpointRow & Record<string, unknown>> = await m.query(
        `SELECT ${TOUCHPOINT_COLUMNS}, ${TOUCHPOINTS_KEYSET.selectKeys()} FROM touchpoints WHERE ${where}
          ORDER BY ${TOUCHPOINTS_KEYSET.orderBy()} OFFSET $${params.length - 1} LIMIT $${params.length}`,
        params,
      );
      const hasMore = found.length > q.pageSize;
      const rows = found.slice(0, q.pageSize);
      const last = rows[rows.length - 1];
      return {
        data: rows.map(touchpointView),
        page: q.page,
        pageSize: q.pageSize,
        total: journey.touchpoint_count,
        hasMore,
        next_cursor: hasMore && last ? TOUCHPOINTS_KEYSET.encode(last, filters) : null,
      };
    });
  }

  async create(caller: Caller, body: z.infer<typeof CreateJourneyBody>): Promise<JourneyView | IdempotentReplay> {
    // Before the transaction: no connection or lock is held while contacts answers. With an
    // Idempotency-Key a refusal is only decided inside, once the key's record has been looked up:
    // the retry of a call that succeeded replays its answer even if the contact has gone since,
    // or contacts is down.
    const contactCheck = body.contact_id === undefined ? undefined : await failureOf(this.contacts.assertContact(caller, body.contact_id));
    if (contactCheck !== undefined && caller.idempotency === undefined) throw contactCheck;
    return this.once(caller, async (m) => {
      if (contactCheck !== undefined) throw contactCheck;
      if (body.contact_id !== undefined) await assertContactLinkable(m, caller.tenantId, body.contact_id);
      const journey = m.create(JourneyEntity, {
        id: newId('journey'),
        tenant_id: caller.tenantId,
        environment: caller.mode,
        contact_id: body.contact_id ?? null,
        anonymous_id: body.anonymous_id ?? null,
        contact_deleted_at: null,
        created_at: new Date(),
      });
      await m.insert(JourneyEntity, journey);
      // At most 500 (the body's limit), far below JOURNEY_MAX_TOUCHPOINTS.
      const touchpoints = (body.touchpoints ?? []).map((t) => touchpointEntity(m, journey.id, t));
      if (touchpoints.length > 0) await m.save(TouchpointEntity, touchpoints, { reload: false });
      const view = await this.load(m, caller, journey.id);
      await recordJourneyEvent(m, caller, 'journeys.created', view.id, journeySummary(view));
      return view;
    });
  }

  async update(caller: Caller, id: string, body: z.infer<typeof UpdateJourneyBody>): Promise<JourneyView> {
    if (typeof body.contact_id === 'string') {
      // Another tenant's (or mode's) journey is not_found whatever the contact_id, as on every other path.
      await this.assertJourney(this.ds.manager, caller, id);
      await this.contacts.assertContact(caller, body.contact_id);
    }
    return this.ds.transaction(async (m) => {
      if (typeof body.contact_id === 'string') await assertContactLinkable(m, caller.tenantId, body.contact_id);
      const journey = await m.findOne(JourneyEntity, { where: mine(caller, id), lock: { mode: 'pessimistic_write' } });
      if (!journey) throw JourneyError.notFound(id);
      if (body.contact_id !== undefined) journey.contact_id = body.contact_id;
      if (body.anonymous_id !== undefined) journey.anonymous_id = body.anonymous_id;
      // The body schema can't see the stored journey, so "at least one of them" is checked here.
      if (journey.contact_id === null && journey.anonymous_id === null) {
        throw new JourneyError('invalid_request', 'A journey needs a contact_id or an anonymous_id', {
          details: [{ field: '(body)', message: 'contact_id and anonymous_id cannot both be null' }],
        });
      }
      await m.update(JourneyEntity, mine(caller, id), { contact_id: journey.contact_id, anonymous_id: journey.anonymous_id });
      return this.load(m, caller, id);
    });
  }

  /** Touchpoints and conversions go with it (ON DELETE CASCADE). */
  async remove(caller: Caller, id: string): Promise<void> {
    const result = await this.ds.getRepository(JourneyEntity).delete(mine(caller, id));
    if (!result.affected) throw JourneyError.notFound(id);
  }

  async addTouchpoint(caller: Caller, id: string, body: z.infer<typeof TouchpointBody>): Promise<JourneyView | IdempotentReplay> {
    return this.once(caller, async (m) => {
      const journey = await this.lockJourney(m, caller, id);
      if (journey.touchpoint_count >= JOURNEY_MAX_TOUCHPOINTS) {
        throw JourneyError.full('touchpoints', JOURNEY_MAX_TOUCHPOINTS);
      }
      await m.save(TouchpointEntity, touchpointEntity(m, id, body), { reload: false });
      return this.load(m, caller, id);
    });
  }

  async addConversion(caller: Caller, id: string, body: z.infer<typeof ConversionBody>): Promise<JourneyView | IdempotentReplay> {
    return this.once(caller, async (m) => {
      const journey = await this.lockJourney(m, caller, id);
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
      const view = await this.load(m, caller, id);
      await recordJourneyEvent(m, caller, 'journeys.converted', id, { journey: journeySummary(view), conversion: conversionView(conversion) });
      return view;
    });
  }

  /**
   * `DELETE /v1/test-data`: the tenant's test journeys go, with their touchpoints and conversions,
   * a batch per transaction, and the test mode's idempotency records (a retried POST would replay
   * a journey that is gone). Idempotent: a repeat (or a retry after a timeout) finds fewer or none.
   * Only ever the test mode, whoever asks.
   */
  async purgeTestData(tenantId: string): Promise<number> {
    await this.ds.query(`DELETE FROM ${IDEMPOTENCY_TABLE} WHERE tenant_id = $1 AND mode = 'test'`, [tenantId]);
    let deleted = 0;
    for (;;) {
      const [, n] = (await this.ds.query(
        `DELETE FROM journeys WHERE id IN (SELECT id FROM journeys WHERE tenant_id = $1 AND environment = 'test' LIMIT $2)`,
        [tenantId, PURGE_BATCH],
      )) as [unknown, number];
      deleted += n;
      if (n < PURGE_BATCH) return deleted;
    }
  }

  /**
   * A POST's write, once per Idempotency-Key (DESIGN "Idempotency"): the key's record is written in
   * the same transaction as the write and its event. Without a key, just the transaction.
   */
  private once<T>(caller: Caller, work: (m: EntityManager) => Promise<T>): Promise<T | IdempotentReplay> {
    return idempotent(this.ds, idempotencyScope(caller), work, { table: IDEMPOTENCY_TABLE });
  }

  /**
   * The row lock makes the caps exact under concurrency (each add sees the count the one before it
   * left) and keeps a concurrent delete from landing between the check and the insert.
   */
  private async lockJourney(m: EntityManager, caller: Caller, id: string): Promise<JourneyEntity> {
    const journey = await m.findOne(JourneyEntity, { where: mine(caller, id), lock: { mode: 'pessimistic_write' } });
    if (!journey) throw JourneyError.notFound(id);
    return journey;
  }

  private async assertJourney(m: EntityManager, caller: Caller, id: string): Promise<void> {
    if (!(await m.existsBy(JourneyEntity, mine(caller, id)))) throw JourneyError.notFound(id);
  }

  private async load(m: EntityManager, caller: Caller, id: string): Promise<JourneyView> {
    const journey = await m.findOneBy(JourneyEntity, mine(caller, id));
    if (!journey) throw JourneyError.notFound(id);
    const [one] = await this.views(m, [journey], REPLY_MAX_BYTES);
    if (!one) throw JourneyError.notFound(id);
    return one;
  }

  /**
   * Three queries for any number of journeys, each reading only what can be embedded: the latest
   * touchpoints of each (an index scan backwards, LIMIT per journey), the earliest of those that
   * have more (one index row each), and the conversions (at most JOURNEY_MAX_CONVERSIONS each).
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
    const earliest: TouchRow[] =
      longer.length === 0
        ? []
        : await m.query(
            `SELECT t.* FROM unnest($1::text[]) AS j(id) CROSS JOIN LATERAL (
               SELECT ${TOUCH_COLUMNS} FROM touchpoints WHERE journey_id = j.id ORDER BY occurred_at, seq LIMIT 1) t`,
            [longer],
          );
    const earliestBy = new Map(earliest.map((r) => [r.journey_id, r]));
    const conversions = await m
      .createQueryBuilder(ConversionEntity, 'c')
      .where('c.journey_id = ANY(:ids)', { ids })
      .orderBy('c.occurred_at', 'ASC')
      .addOrderBy('c.seq', 'ASC')
      .getMany();
    const conversionsBy = groupBy(conversions);
    return journeys.map((j) =>
      journeyView(j, { latest: latestBy.get(j.id) ?? [], earliest: earliestBy.get(j.id), conversions: conversionsBy.get(j.id) ?? [] }, budgetEach),
    );
  }
}

/**
 * Each journey of a page gets an equal share of the answer: 50 journeys of 100 touchpoints with
 * 16 KiB of properties each would be 80 MB.
 */
function listShare(n: number): number {
  return n > 0 ? Math.floor((REPLY_MAX_BYTES - PAGE_FIELDS_BYTES) / n) - 1 : 0;
}

/** The error a check failed with, or undefined when it passed. */
async function failureOf(check: Promise<void>): Promise<unknown> {
  try {
    await check;
    return undefined;
  } catch (err) {
    return err;
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
