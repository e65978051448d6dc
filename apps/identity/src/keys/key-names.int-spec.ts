import { Rpc, type CreatedTenant, type IssuedKey, type KeyView } from '@keyway/contracts';
import { startIdentity, type IdentityHarness } from '../../test/identity-harness';
import { KeyNamesAndGrace1796083200000 } from '../migrations/1796083200000-key-names-and-grace';
import { rebuildReadModels } from './rebuild-read-models';

/**
 * Key names are unique among a tenant's non-revoked keys of one mode (issue 12): the partial
 * unique index on the list rows, in the same statement as the events, so two writers racing for
 * one name cannot both win, on one replica (group commit) or several (the index).
 */
describe('identity: key names, unique per tenant and mode among non-revoked keys', () => {
  let h: IdentityHarness;
  let tenant: string;
  let live: ReturnType<IdentityHarness['ctx']>;
  let test: ReturnType<IdentityHarness['ctx']>;

  beforeAll(async () => {
    h = await startIdentity('keynames');
    tenant = (await h.ok<CreatedTenant>(Rpc.tenantsCreate, { ctx: { ...h.ctx(''), actor: { type: 'operator', id: 'op' } }, body: { name: 'Names' } })).tenant.id;
    live = h.ctx(tenant);
    test = { ...h.ctx(tenant), environment: 'test' };
  });
  afterAll(() => h.close());

  const create = (ctx: typeof live, name: string) => h.call<IssuedKey>(Rpc.keysCreate, { ctx, body: { name, scopes: [] } });
  const events = async (): Promise<number> => ((await h.ds.query(`SELECT count(*)::int AS n FROM events`)) as [{ n: number }])[0].n;

  it('a duplicate name on create or rename is 409 conflict and writes nothing; renaming to its own name is fine', async () => {
    const a = (await create(live, 'deploy')).response!;
    const b = (await create(live, 'deploy-2')).response!;
    const before = await events();
    const dup = await create(live, 'deploy');
    expect(dup.err).toMatchObject({ code: 'conflict', error: expect.stringContaining('deploy') });
    const rename = await h.call(Rpc.keysUpdate, { ctx: live, params: { id: b.id }, body: { name: 'deploy', scopes: ['contacts:read'] } });
    expect(rename.err?.code).toBe('conflict');
    expect(await events()).toBe(before);
    expect((await h.ok<KeyView>(Rpc.keysGet, { ctx: live, params: { id: b.id } })).scopes).toEqual([]);
    expect((await h.call<KeyView>(Rpc.keysUpdate, { ctx: live, params: { id: a.id }, body: { name: 'deploy', scopes: ['contacts:read'] } })).response?.scopes).toEqual(['contacts:read']);
    // Names are compared exactly (after the trim every name gets): another case is another name.
    expect((await create(live, 'Deploy')).response?.name).toBe('Deploy');
    expect((await create(live, '  deploy  ')).err?.code).toBe('conflict');
  });

  it('two creates with one name at once: exactly one wins, on one replica and across replicas', async () => {
    const together = await Promise.all(Array.from({ length: 10 }, () => create(live, 'racing')));
    expect(together.filter((a) => a.response).length).toBe(1);
    expect(together.filter((a) => a.err?.code === 'conflict').length).toBe(9);
    // A second identity on the same database: the two group commits cannot see each other.
    const other = await startIdentity('keynames-2', { DATABASE_URL: h.config.DATABASE_URL });
    try {
      for (let round = 0; round < 5; round++) {
        const answers = await Promise.all([create(live, `across ${round}`), other.call<IssuedKey>(Rpc.keysCreate, { ctx: live, body: { name: `across ${round}`, scopes: [] } })]);
        expect(answers.filter((a) => a.response).length).toBe(1);
        expect(answers.filter((a) => a.err?.code === 'conflict').length).toBe(1);
      }
    } finally {
      await other.close();
    }
    const rows: Array<{ name: string; n: number }> = await h.ds.query(
      `SELECT name, count(*)::int AS n FROM keys WHERE tenant_id = $1 AND NOT revoked GROUP BY environment, name HAVING count(*) > 1`,
      [tenant],
    );
    expect(rows.filter((r) => r.name !== 'Root key')).toEqual([]);
  });

  it("a revoked key's name is free again; a test key's name does not block a live key's, nor the reverse", async () => {
    const old = (await create(live, 'rotated-out')).response!;
    await h.ok(Rpc.keysRevoke, { ctx: live, params: { id: old.id }, body: {} });
    const again = await create(live, 'rotated-out');
    expect(again.response?.name).toBe('rotated-out');
    expect((await create(test, 'rotated-out')).response?.environment).toBe('test');
    expect((await create(test, 'rotated-out')).err?.code).toBe('conflict');
    expect((await create(test, 'only-test')).response).toBeDefined();
    expect((await create(live, 'only-test')).response).toBeDefined();
  });

  it('root keys keep their name unclaimed: a new root key stands beside the one it replaces', async () => {
    const reissued = await h.call(Rpc.tenantsRootKey, { ctx: { ...h.ctx(''), actor: { type: 'operator', id: 'op' } }, params: { id: tenant }, body: {} });
    expect(reissued.err).toBeUndefined();
  });

  it('the migration does not fail on duplicates already stored: the oldest keeps the name, the others keep theirs unclaimed until renamed', async () => {
    const [a, b, c] = [(await create(live, 'legacy a')).response!, (await create(live, 'legacy b')).response!, (await create(live, 'legacy c')).response!];
    const migration = new KeyNamesAndGrace1796083200000();
    const runner = h.ds.createQueryRunner();
    try {
      await migration.down(runner);
      // What a database from before the rule may hold: three live keys sharing one name.
      await runner.query(`UPDATE keys SET name = 'legacy' WHERE id = ANY($1)`, [[a.id, b.id, c.id]]);
      await runner.query(`UPDATE events SET data = jsonb_set(data, '{name}', '"legacy"') WHERE stream_id = ANY($1) AND type = 'created'`, [[a.id, b.id, c.id]]);
      await migration.up(runner);
    } finally {
      await runner.release();
    }
    const claimed: Array<{ id: string; name_claimed: boolean }> = await h.ds.query(`SELECT id, name_claimed FROM keys WHERE id = ANY($1) ORDER BY created_at, id`, [[a.id, b.id, c.id]]);
    expect(claimed.map((r) => r.name_claimed)).toEqual([true, false, false]);
    expect((await create(live, 'legacy')).err?.code).toBe('conflict');
    // An unclaimed key can still be changed without a rename, and rebuilt as it is.
    expect((await h.call(Rpc.keysUpdate, { ctx: live, params: { id: b.id }, body: { scopes: ['contacts:read'] } })).err).toBeUndefined();
    const snapshot = () => h.ds.query(`SELECT * FROM keys ORDER BY id`);
    const before = await snapshot();
    await rebuildReadModels(h.ds);
    expect(await snapshot()).toEqual(before);
    // Renamed, it claims its new name; back to the taken one, it is refused.
    expect((await h.call(Rpc.keysUpdate, { ctx: live, params: { id: c.id }, body: { name: 'legacy c' } })).err).toBeUndefined();
    expect((await h.call(Rpc.keysUpdate, { ctx: live, params: { id: c.id }, body: { name: 'legacy' } })).err?.code).toBe('conflict');
  });
});
