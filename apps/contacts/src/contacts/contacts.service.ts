import {
  ContactBatchItem,
  KeywayError,
  type ContactBatchItemResult,
  type ContactListQuery,
  type IdempotentReplay,
  type ContactView,
  type CreateContactBody,
  type Environment,
  type Page,
  type UpdateContactBody,
  type UpsertContactBody,
  invalidRequest,
} from '@keyway/contracts';
import { idempotent } from '@keyway/database';
import { Injectable } from '@nestjs/common';
import { InjectDataSource, InjectRepository } from '@nestjs/typeorm';
import { DataSource, Repository } from 'typeorm';
import type { z } from 'zod';
import type { Caller } from '../shared/caller';
import { Records, retryDeadlocks, type Upserted } from '../shared/records';
import { contactView } from '../shared/views';
import { ContactEntity } from './contact.entity';
import { ContactError } from './contacts.errors';

const COLUMNS = ['type', 'name', 'email', 'external_id', 'account_id', 'properties'] as const;

/** The HTTP status an item's error would have had alone (the batch itself answers 200). */
function itemStatus(err: KeywayError): number {
  switch (err.code) {
    case 'invalid_request':
      return 400;
    case 'not_found':
      return 404;
    case 'conflict':
      return 409;
    default:
      return 500;
  }
}

/** `%`, `_` and `\` are taken literally in `q`. */
const likePattern = (q: string) => `%${q.replace(/[\\%_]/g, '\\$&')}%`;

@Injectable()
export class ContactsService {
  readonly records: Records<ContactView>;

  constructor(
    @InjectDataSource() private readonly ds: DataSource,
    @InjectRepository(ContactEntity) repo: Repository<ContactEntity>,
  ) {
    this.records = new Records(ds, repo, {
      table: 'contacts',
      columns: COLUMNS,
      view: contactView,
      notFound: (id) => ContactError.notFound(id),
      refusal: (err, values) => ContactError.fromDatabase(err, values),
    });
  }

  async list(caller: Caller, q: z.infer<typeof ContactListQuery>): Promise<Page<ContactView>> {
    const sql: string[] = [];
    const params: unknown[] = [];
    const param = (v: unknown) => `$${params.push(v) + 1}`;
    if (q.q) {
      // The concatenation is what the per-mode trigram index holds (it narrows); the OR is the
      // exact rule (a match must not straddle the name and the email).
      const like = param(likePattern(q.q));
      sql.push(`(r.name || ' ' || r.email) ILIKE ${like}`, `(r.name ILIKE ${like} OR r.email ILIKE ${like})`);
    }
    if (q.type) sql.push(`r.type = ${param(q.type)}`);
    if (q.account_id) sql.push(`r.account_id = ${param(q.account_id)}`);
    const filters = { sql, params, echo: { q: q.q, type: q.type, account_id: q.account_id } };
    if (q.q) return (await this.records.probe(caller, q, filters)) ?? this.records.list(caller, q, filters);
    return this.records.list(caller, q, filters);
  }

  get(caller: Caller, id: string): Promise<ContactView> {
    return this.records.get(caller, id);
  }

  /** Idempotent by key (DESIGN, Idempotency): the record is written in the contact's transaction. */
  create(caller: Caller, body: z.infer<typeof CreateContactBody>): Promise<ContactView | IdempotentReplay> {
    return idempotent(this.ds, caller.request, (m) => this.records.insert(m, caller, body));
  }

  update(caller: Caller, id: string, body: z.infer<typeof UpdateContactBody>): Promise<ContactView> {
    return this.ds.transaction((m) => this.records.update(m, caller, id, body));
  }

  remove(caller: Caller, id: string): Promise<void> {
    return this.ds.transaction((m) => this.records.remove(m, caller, id));
  }

  upsert(caller: Caller, externalId: string, body: z.infer<typeof UpsertContactBody>): Promise<Upserted<ContactView>> {
    return this.ds.transaction((m) => this.records.upsert(m, caller, externalId, body));
  }

  /**
   * Up to 100 upserts in one transaction, each inside a savepoint: an item Postgres refuses (an
   * email another contact holds, an unknown account) is rolled back alone and answered with its
   * error; the others commit together, with their events. Items are written in external-id order
   * (stable: the same id twice keeps its order), so two batches over the same people take their
   * row locks in the same order and do not deadlock; the answers keep the order sent.
   */
  batch(caller: Caller, items: readonly unknown[]): Promise<{ results: ContactBatchItemResult[] } | IdempotentReplay> {
    const results: ContactBatchItemResult[] = new Array(items.length);
    const valid: Array<{ at: number; item: ContactBatchItem }> = [];
    items.forEach((raw, at) => {
      const parsed = ContactBatchItem.safeParse(raw);
      if (parsed.success) valid.push({ at, item: parsed.data });
      else results[at] = { status: 400, error: invalidRequest(parsed.error, 'Invalid item').toBody() };
    });
    valid.sort((a, b) => (a.item.external_id < b.item.external_id ? -1 : a.item.external_id > b.item.external_id ? 1 : 0));
    return retryDeadlocks(() =>
      idempotent(this.ds, caller.request, async (m) => {
        for (const { at, item } of valid) {
          const { external_id, ...body } = item;
          // Two batches inserting the same new person at once: the upsert's arbiter is the external
          // id, so the loser meets the winner's email first (a unique violation, raised once the
          // winner committed). Tried again, it finds the external id and updates: one retry.
          for (let attempt = 1; ; attempt++) {
            await m.query('SAVEPOINT item');
            try {
              const r = await this.records.upsert(m, caller, external_id, body);
              await m.query('RELEASE SAVEPOINT item');
              results[at] = { status: r.status, id: r.body.id };
              break;
            } catch (err) {
              if (!(err instanceof KeywayError)) throw err;
              await m.query('ROLLBACK TO SAVEPOINT item');
              if (err.code === 'conflict' && attempt === 1) continue;
              results[at] = { status: itemStatus(err), error: err.toBody() };
              break;
            }
          }
        }
        return { results };
      }),
    );
  }

  /** For journeys (Rpc.contactsExists): through the by-id loader, so the checks of one turn share a query. */
  async exists(tenantId: string, id: string, mode: Environment): Promise<boolean> {
    return (await this.records.find({ tenantId, mode }, id)) !== null;
  }
}
