import { openServiceDatabase, serviceDatabaseUrl } from '@keyway/database';
import { startInfra, type TestInfra } from '@keyway/testing';
import { Init1732435200000 } from './1732435200000-init';
import { migrations } from '.';

/** Rows written before test mode existed are live after the migration, with their links intact. */
describe('contacts migrations: modes on existing rows', () => {
  let infra: TestInfra;
  beforeAll(async () => {
    infra = await startInfra('contactmigrate');
  });
  afterAll(() => infra?.stop());

  it('existing contacts and accounts become live; the mode is required afterwards; down and up again', async () => {
    const url = serviceDatabaseUrl(infra.databaseUrl, 'contacts');
    const before = await openServiceDatabase({ url, entities: [], migrations: [Init1732435200000] });
    await before.query(`INSERT INTO accounts (id, tenant_id, name, created_at, updated_at) VALUES ('acc_1', 'ten_1', 'Acme', now(), now())`);
    await before.query(
      `INSERT INTO contacts (id, tenant_id, type, name, email, external_id, account_id, created_at, updated_at) VALUES ('ct_1', 'ten_1', 'user', 'Ada', 'ada@example.com', 'u-1', 'acc_1', now(), now())`,
    );
    await before.destroy();

    const after = await openServiceDatabase({ url, entities: [], migrations });
    try {
      expect(await after.query(`SELECT id, environment, account_id FROM contacts`)).toEqual([{ id: 'ct_1', environment: 'live', account_id: 'acc_1' }]);
      expect(await after.query(`SELECT id, environment, external_id FROM accounts`)).toEqual([{ id: 'acc_1', environment: 'live', external_id: null }]);
      // No default: a write that does not name its mode is refused.
      await expect(after.query(`INSERT INTO accounts (id, tenant_id, name, created_at, updated_at) VALUES ('acc_2', 'ten_1', 'X', now(), now())`)).rejects.toThrow(/environment/);
      // The same email and external id in test mode is another contact.
      await after.query(
        `INSERT INTO contacts (id, tenant_id, environment, type, name, email, external_id, created_at, updated_at) VALUES ('ct_2', 'ten_1', 'test', 'user', 'Ada', 'ADA@example.com', 'u-1', now(), now())`,
      );
      // A test contact cannot point at a live account.
      await expect(after.query(`UPDATE contacts SET account_id = 'acc_1' WHERE id = 'ct_2'`)).rejects.toThrow(/contacts_account/);
      const extensions = (await after.query(`SELECT extname FROM pg_extension ORDER BY extname`)) as Array<{ extname: string }>;
      expect(extensions.map((e) => e.extname)).toEqual(expect.arrayContaining(['btree_gin', 'pg_trgm']));
      // Deleting the live account clears only the link.
      await after.query(`DELETE FROM accounts WHERE id = 'acc_1'`);
      expect(await after.query(`SELECT tenant_id, environment, account_id FROM contacts WHERE id = 'ct_1'`)).toEqual([{ tenant_id: 'ten_1', environment: 'live', account_id: null }]);
      // Down to before modes (every later migration first), then up again.
      for (let i = migrations.length - 1; i > 0; i--) await after.undoLastMigration({ transaction: 'all' });
      expect(await after.query(`SELECT id FROM contacts`)).toEqual([{ id: 'ct_1' }]);
      await after.runMigrations({ transaction: 'all' });
      expect(await after.query(`SELECT id, environment FROM contacts`)).toEqual([{ id: 'ct_1', environment: 'live' }]);
    } finally {
      await after.destroy();
    }
  });
});
