import { startRpcService, type RpcServiceHarness } from '@keyway/testing';
import {
  AccountView,
  ContactView,
  FREEFORM_MAX_BYTES,
  FREEFORM_MAX_DEPTH,
  ITEM_MAX_BYTES,
  NATS_MAX_PAYLOAD,
  PAGE_MAX,
  Rpc,
  jsonBytes,
  pageOf,
} from '@keyway/contracts';
import { AppModule } from './app.module';
import { ContactsEnv, SERVICE } from './config';

/** `{p: "…"}` of exactly `bytes` bytes as JSON (`{"p":""}` is 8). */
const ofBytes = (bytes: number): Record<string, unknown> => ({ p: 'x'.repeat(bytes - 8) });
const nested = (levels: number): Record<string, unknown> => {
  let v: Record<string, unknown> = {};
  for (let i = 1; i < levels; i++) v = { d: v };
  return v;
};
/** The character that costs most as JSON: U+0001 is sent as the six characters `\u0001`. */
const costly = (n: number, suffix = '') => '\u0001'.repeat(n - suffix.length) + suffix;

/**
 * DESIGN "Sizes": free-form `properties` are bounded, so every record is, so a page of the
 * largest records still fits in one NATS message. Before, a tenant could store records of ~1 MiB
 * and every list of them timed out with 503 until they were deleted.
 */
describe('contacts and accounts: sizes', () => {
  let h: RpcServiceHarness<unknown>;
  const ctx = (tenant: string) => h.ctx(tenant);
  const call = <T = unknown>(subject: string, data: unknown) => h.call<T>(subject, data);
  let seq = 0;

  beforeAll(async () => {
    h = await startRpcService('contactsizes', { name: SERVICE, env: ContactsEnv, module: (config) => AppModule.forRoot(config) });
  });
  afterAll(() => h?.close());

  /** The largest n in [lo, hi] that `accepts` takes, assuming it takes every smaller one. */
  async function largestAccepted(lo: number, hi: number, accepts: (n: number) => Promise<boolean>): Promise<number> {
    if (!(await accepts(lo))) throw new Error(`not even ${lo} is accepted`);
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (await accepts(mid)) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** A create that must answer either the record or invalid_request (never internal, never a timeout). */
  async function accepted(subject: string, tenant: string, body: Record<string, unknown>): Promise<boolean> {
    const r = await call(subject, { ctx: ctx(tenant), body });
    if (r.err && r.err.code !== 'invalid_request') throw new Error(JSON.stringify(r.err));
    return !r.err;
  }

  /** The raw reply, to measure what really crossed NATS. */
  async function rawList(subject: string, tenant: string): Promise<{ bytes: number; body: { response?: unknown; err?: unknown } }> {
    const m = await h.nc.request(subject, JSON.stringify({ pattern: subject, data: { ctx: ctx(tenant), query: { pageSize: String(PAGE_MAX) } }, id: 'l' }), { timeout: 10_000 });
    return { bytes: m.data.length, body: m.json() };
  }

  const worstContact = (properties: Record<string, unknown>) => {
    const n = String(++seq).padStart(4, '0');
    return {
      type: 'partner',
      name: costly(200, n),
      email: `${'a'.repeat(320 - 4 - '@example.com'.length)}${n}@example.com`,
      external_id: costly(200, n),
      properties,
    };
  };
  const worstAccount = (properties: Record<string, unknown>) => ({ name: costly(200, String(++seq)), domain: costly(253), properties });

  it.each([
    ['contacts', Rpc.contactsCreate, Rpc.contactsList, worstContact, ContactView],
    ['accounts', Rpc.accountsCreate, Rpc.accountsList, worstAccount, AccountView],
  ] as const)('%s: the largest record accepted is bounded, and a page of 50 of them fits in one message', async (label, create, list, worst, View) => {
    const largest = await largestAccepted(8, 1_000_000, (n) => accepted(create, `ten_probe_${label}`, worst(ofBytes(n))));
    expect(largest).toBe(FREEFORM_MAX_BYTES);

    const tenant = `ten_full_${label}`;
    for (let i = 0; i < PAGE_MAX; i++) expect(await accepted(create, tenant, worst(ofBytes(largest)))).toBe(true);
    const { bytes, body } = await rawList(list, tenant);
    expect(body.err).toBeUndefined();
    const page = pageOf(View).parse(body.response);
    expect(page.data).toHaveLength(PAGE_MAX);
    for (const item of page.data) {
      expect(jsonBytes(item.properties)).toBe(FREEFORM_MAX_BYTES);
      expect(jsonBytes(item)).toBeLessThanOrEqual(ITEM_MAX_BYTES);
    }
    expect(bytes).toBeLessThan(NATS_MAX_PAYLOAD);
  });

  describe('a write that answers a size error saved nothing', () => {
    const tooBig = ofBytes(FREEFORM_MAX_BYTES + 1);
    const tooDeep = nested(FREEFORM_MAX_DEPTH + 1);
    // jsonb refuses both; they were 500s.
    const unstorable = [{ p: 'a\u0000b' }, { p: 'a\ud800b' }];

    it.each([
      ['contacts', Rpc.contactsCreate, Rpc.contactsUpdate, Rpc.contactsGet, Rpc.contactsList, (p: unknown) => ({ type: 'lead', name: 'S', email: `s${++seq}@example.com`, properties: p })],
      ['accounts', Rpc.accountsCreate, Rpc.accountsUpdate, Rpc.accountsGet, Rpc.accountsList, (p: unknown) => ({ name: 'S', properties: p })],
    ] as const)('%s: create and update, named on properties', async (label, create, update, get, list, body) => {
      const tenant = `ten_refused_${label}`;
      const kept = await h.ok<{ id: string }>(create, { ctx: ctx(tenant), body: body({ plan: 'free' }) });
      for (const bad of [tooBig, tooDeep, ...unstorable]) {
        const created = await call(create, { ctx: ctx(tenant), body: body(bad) });
        expect(created.err).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ field: 'properties' })] });
        const updated = await call(update, { ctx: ctx(tenant), params: { id: kept.id }, body: { properties: bad } });
        expect(updated.err).toMatchObject({ code: 'invalid_request', details: [expect.objectContaining({ field: 'properties' })] });
      }
      expect(await h.ok(get, { ctx: ctx(tenant), params: { id: kept.id } })).toEqual(kept);
      expect(await h.ok(list, { ctx: ctx(tenant), query: {} })).toMatchObject({ total: 1 });
      // The limits themselves are allowed.
      await h.ok(update, { ctx: ctx(tenant), params: { id: kept.id }, body: { properties: nested(FREEFORM_MAX_DEPTH) } });
      await h.ok(update, { ctx: ctx(tenant), params: { id: kept.id }, body: { properties: ofBytes(FREEFORM_MAX_BYTES) } });
    });
  });
});
