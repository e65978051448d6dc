import { ensureDatabase, openServiceDatabase, provisionServiceDatabase, serviceDatabaseUrl, serviceRoleName, serviceRoleUrl } from '@keyway/database';
import { startInfra, type TestInfra } from '@keyway/testing';
import { Client } from 'pg';
import { migrations as contactsMigrations } from '../../apps/contacts/src/migrations';
import { migrations as identityMigrations } from '../../apps/identity/src/migrations';

/**
 * The Postgres wall (issue 13, DESIGN Operations): each service's role owns its database and
 * nothing else, and no other role may even connect to it (CONNECT is revoked from PUBLIC). Our
 * machines trust local connections, so that privilege and ownership are the whole wall.
 */
async function query(url: string, sql: string): Promise<unknown[]> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows;
  } finally {
    await c.end();
  }
}
const asRole = (infra: TestInfra, role: string, service: string) => {
  const u = new URL(serviceDatabaseUrl(infra.adminDatabaseUrl, service));
  u.username = role;
  return u.toString();
};

describe('the Postgres wall: one role per service, owning only its database', () => {
  let infra: TestInfra;
  beforeAll(async () => {
    infra = await startInfra('pgwall');
  });
  afterAll(async () => {
    await infra?.stop();
  });

  it('runs a service\'s real migrations as its role; contacts\' role cannot connect to identity\'s database, let alone read it', async () => {
    const identityUrl = await infra.provisionRole('identity');
    const contactsUrl = await infra.provisionRole('contacts');
    const identity = await openServiceDatabase({ url: serviceDatabaseUrl(identityUrl, 'identity'), entities: [], migrations: identityMigrations, poolSize: 1 });
    const contacts = await openServiceDatabase({ url: serviceDatabaseUrl(contactsUrl, 'contacts'), entities: [], migrations: contactsMigrations, poolSize: 1 });
    try {
      const identityRole = serviceRoleName(infra.adminDatabaseUrl, 'identity');
      const contactsRole = serviceRoleName(infra.adminDatabaseUrl, 'contacts');
      expect(await identity.query('SELECT current_user AS u')).toEqual([{ u: identityRole }]);
      expect(await identity.query(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public' AND tableowner <> current_user`)).toEqual([{ n: 0 }]);
      await identity.query(`INSERT INTO migrations (timestamp, name) VALUES (1, 'wall-marker')`);

      await expect(query(asRole(infra, contactsRole, 'identity'), 'SELECT 1')).rejects.toMatchObject({ code: '42501' });
      await expect(query(asRole(infra, identityRole, 'contacts'), 'SELECT 1')).rejects.toMatchObject({ code: '42501' });
      // Nor can it make itself another way in: no new database, no new role.
      await expect(contacts.query('CREATE DATABASE wall_escape')).rejects.toMatchObject({ code: '42501' });
      await expect(contacts.query('CREATE ROLE wall_escape')).rejects.toMatchObject({ code: '42501' });
      await expect(contacts.query(`ALTER ROLE ${JSON.stringify(contactsRole)} SUPERUSER`)).rejects.toMatchObject({ code: '42501' });
      // The admin still reaches both (migrations on an operator's behalf, backups).
      expect(await query(serviceDatabaseUrl(infra.adminDatabaseUrl, 'identity'), `SELECT name FROM migrations WHERE name = 'wall-marker'`)).toEqual([{ name: 'wall-marker' }]);
    } finally {
      await Promise.all([identity.destroy(), contacts.destroy()]);
    }
  });

  it('takes over a database made before roles existed, idempotently and with several provisioners at once', async () => {
    // Today's install: the admin created journeys' database and ran its migrations.
    const adminJourneys = serviceDatabaseUrl(infra.adminDatabaseUrl, 'jrn_old');
    await ensureDatabase(adminJourneys);
    await query(adminJourneys, `CREATE TABLE t (id serial PRIMARY KEY, v text); CREATE VIEW tv AS SELECT v FROM t; CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'; INSERT INTO t (v) VALUES ('kept')`);
    const other = serviceRoleName(infra.adminDatabaseUrl, 'contacts');
    await infra.provisionRole('contacts');
    // Before: PUBLIC may connect to a new database, so any role can.
    expect(await query(asRole(infra, other, 'jrn_old'), 'SELECT 1 AS ok')).toEqual([{ ok: 1 }]);

    await Promise.all([1, 2, 3].map(() => provisionServiceDatabase(infra.adminDatabaseUrl, 'jrn_old')));
    await provisionServiceDatabase(infra.adminDatabaseUrl, 'jrn_old');
    const own = serviceDatabaseUrl(serviceRoleUrl(infra.adminDatabaseUrl, 'jrn_old'), 'jrn_old');
    expect(await query(own, `INSERT INTO t (v) VALUES ('new') RETURNING id`)).toEqual([{ id: 2 }]);
    expect(await query(own, 'SELECT v, f() AS one FROM tv ORDER BY v')).toEqual([{ v: 'kept', one: 1 }, { v: 'new', one: 1 }]);
    await expect(query(asRole(infra, other, 'jrn_old'), 'SELECT 1')).rejects.toMatchObject({ code: '42501' });
  });

  it('sets and rotates a role\'s password when given one', async () => {
    await provisionServiceDatabase(infra.adminDatabaseUrl, 'pw_svc', { password: 'first' });
    await provisionServiceDatabase(infra.adminDatabaseUrl, 'pw_svc', { password: 'second' });
    const rows = await query(serviceDatabaseUrl(infra.adminDatabaseUrl, 'pw_svc'), `SELECT rolpassword IS NOT NULL AS has FROM pg_authid WHERE rolname = current_database()`);
    expect(rows).toEqual([{ has: true }]);
  });
});
