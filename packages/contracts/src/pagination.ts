import { z } from 'zod';

export const PAGE_SIZE_DEFAULT = 10;
export const PAGE_SIZE_MAX = 50;
/**
 * The deepest a `page` may reach: `page × pageSize` at most this. OFFSET makes Postgres read and
 * drop every row before the page, so deep pages cost more the deeper they go; past this window a
 * client walks with `after` (a keyset cursor: every page costs the same).
 */
export const PAGE_WINDOW_MAX = 10_000;
/** A cursor is opaque base64url text; this bounds what a service ever has to decode. */
export const CURSOR_MAX_LENGTH = 512;

/**
 * Query-string pagination: strings from the URL, coerced, bounded. A plain object so that list
 * queries can `.extend` it (zod 4 cannot extend a refined object): the rules across fields live in
 * `pageRules`, which every list query applies with `paged(...)` (the route table does it for you).
 */
export const PageQuery = z.strictObject({
  page: z.coerce.number().int().min(1).default(1),
  pageSize: z.coerce.number().int().min(1).max(PAGE_SIZE_MAX).default(PAGE_SIZE_DEFAULT),
  /** The `next_cursor` of the previous page: the page after it. */
  after: z
    .string()
    .min(1)
    .max(CURSOR_MAX_LENGTH)
    .regex(/^[A-Za-z0-9_.-]+$/, 'must be a next_cursor as answered')
    .optional(),
});
export type PageQuery = z.infer<typeof PageQuery>;

/** What `pageRules` reads: any list query built on PageQuery. */
type PageFields = Pick<PageQuery, 'page' | 'pageSize' | 'after'>;

/**
 * The rules across PageQuery's fields: `after` and a `page` beyond the first do not mix (which
 * would win?), and `page × pageSize` stays within PAGE_WINDOW_MAX, the error naming `after`,
 * the way to go deeper.
 */
export function pageRules(v: PageFields, ctx: z.RefinementCtx): void {
  if (v.after !== undefined && v.page !== 1) {
    ctx.addIssue({ code: 'custom', path: ['page'], message: 'give either page or after, not both: after continues from a next_cursor' });
  }
  if (v.page * v.pageSize > PAGE_WINDOW_MAX) {
    ctx.addIssue({
      code: 'custom',
      path: ['after'],
      message: `page × pageSize may be at most ${PAGE_WINDOW_MAX}: to go deeper, follow next_cursor with after=<cursor>`,
    });
  }
}

/** A list query with the page rules applied: `paged(PageQuery.extend({ q: … }))`. */
export function paged<S extends z.ZodType<PageFields, unknown>>(schema: S): S {
  return schema.superRefine(pageRules) as unknown as S;
}

/** The plain list query (no filters), with the page rules. */
export const Paging = paged(PageQuery);

export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({
    data: z.array(item),
    page: z.number().int(),
    pageSize: z.number().int(),
    /** Exact, unless `total_is_estimate` is true (large lists: counting them on every page costs too much). */
    total: z.number().int(),
    /** Always exact: another page follows. */
    hasMore: z.boolean(),
    /** Pass as `after` for the next page; null on the last page. */
    next_cursor: z.string().nullable(),
    total_is_estimate: z.literal(true).optional(),
  });
}
export interface Page<T> {
  data: T[];
  page: number;
  pageSize: number;
  total: number;
  hasMore: boolean;
  next_cursor: string | null;
  total_is_estimate?: true;
}

/**
 * An OFFSET page with an exact total, for small lists that offer no cursor. Lists that can grow
 * use @keyway/database's `fetchPage` (keyset cursor, cheap total) instead.
 */
export function toPage<T>(data: T[], total: number, q: Pick<PageQuery, 'page' | 'pageSize'>): Page<T> {
  return { data, page: q.page, pageSize: q.pageSize, total, hasMore: q.page * q.pageSize < total, next_cursor: null };
}
