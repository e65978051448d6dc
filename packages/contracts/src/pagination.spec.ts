import { z } from 'zod';
import { PAGE_WINDOW_MAX, PageQuery, Paging, paged, toPage } from './pagination';

const fieldsOf = (r: z.ZodSafeParseResult<unknown>): string[] => (r.success ? [] : r.error.issues.map((i) => i.path.join('.')));

describe('page query', () => {
  it('coerces and defaults as before, and takes after', () => {
    expect(Paging.parse({})).toEqual({ page: 1, pageSize: 10 });
    expect(Paging.parse({ page: '3', pageSize: '50' })).toEqual({ page: 3, pageSize: 50 });
    expect(Paging.parse({ after: 'abc_-.DEF' })).toEqual({ page: 1, pageSize: 10, after: 'abc_-.DEF' });
  });

  it('refuses a page beyond the 10,000-row window, naming after', () => {
    expect(Paging.safeParse({ page: String(PAGE_WINDOW_MAX / 50), pageSize: '50' }).success).toBe(true);
    const r = Paging.safeParse({ page: String(PAGE_WINDOW_MAX / 50 + 1), pageSize: '50' });
    expect(fieldsOf(r)).toEqual(['after']);
    expect(fieldsOf(Paging.safeParse({ page: '1001', pageSize: '10' }))).toEqual(['after']);
  });

  it('refuses after with a page beyond the first, and a cursor that is not cursor text', () => {
    expect(fieldsOf(Paging.safeParse({ page: '2', after: 'abc' }))).toEqual(['page']);
    expect(fieldsOf(Paging.safeParse({ after: 'a b' }))).toEqual(['after']);
    expect(fieldsOf(Paging.safeParse({ after: 'x'.repeat(513) }))).toEqual(['after']);
  });

  it('stays extendable: a list query adds its filters, then applies the same rules', () => {
    const Filtered = paged(PageQuery.extend({ q: z.string().optional() }));
    expect(Filtered.parse({ q: 'ada' })).toEqual({ page: 1, pageSize: 10, q: 'ada' });
    expect(fieldsOf(Filtered.safeParse({ q: 'ada', page: '5000', pageSize: '10' }))).toEqual(['after']);
  });

  it('an OFFSET page says no cursor', () => {
    expect(toPage([1, 2], 12, { page: 1, pageSize: 2 })).toEqual({ data: [1, 2], page: 1, pageSize: 2, total: 12, hasMore: true, next_cursor: null });
  });
});
