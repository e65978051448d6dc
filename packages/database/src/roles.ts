import { Client } from 'pg';
import { pgErrorCode } from './pg-errors';
import { serviceDatabaseUrl } from './service-database';

/**
 * Each service's own Postgres role, which owns its database and nothing else (DESIGN, Operations;
 * docs/operations/walls.md). The role is named after the database (`keyway_contacts` owns
 * `keyway_contacts`), so a test run's roles, like its databases, carry the run's name: roles are
 * cluster-wide.
 *
 * New databases grant CONNECT to PUBLIC; provisioning revokes it, so contacts' role cannot even
 * connect to identity's database. With trust authentication (our machines) that privilege and the
 * ownership are the wall; in production each role also has its password.
 */
export function serviceRoleName(baseUrl: string, service: string): string {
  return decodeURIComponent(new URL(serviceDatabaseUrl(baseUrl, service)).pathname.replace(/^\//, ''));
}

/**
 * The `DATABASE_URL` to give a service so it connects as its own role: the same base (the service
 * still derives `<base>_<service>` from it), with the role as the user and `password` (none: trust).
 */
export function serviceRoleUrl(baseUrl: string, service: string, password?: string): string {
  const url = new URL(baseUrl);
  url.username = encodeURIComponent(serviceRoleName(baseUrl, service));
  url.password = password === undefined ? '' : encodeURIComponent(password);
  return url.toString();
}

const ident = (name: string): string => `"${name.replace(/"/g, '""')}"`;
const literal = (text: string): string => `'${text.replace(/'/g, "''")}'`;

function adminClient(adminUrl: string, database: string): Client {
  const u = new URL(adminUrl);
  u.pathname = `/${encodeURIComponent(database)}`;
  return new Client({ connectionString: u.toString() });
}

/** Runs `sql`; another provisioner doing the same at once (`42710` duplicate object, …) is success. */
async function racing(client: Client, sql: string, codes: string[]): Promise<void> {
  try {
    await client.query(sql);
  } catch (err) {
    if (!codes.includes(pgErrorCode(err) ?? '')) throw err;
  }
}

export interface ProvisionOptions {
  /** The role's password (`ALTER ROLE … PASSWORD` on every run: rotating is running it again). */
  password?: string;
}

/**
 * Creates the service's role and database if missing, makes the role own the database and every
 * object already in it (a database made before roles existed was the admin's), and lets no other
 * role connect. Idempotent and safe when several run at once. `adminUrl` must be a role that may
 * create roles and databases (the cluster's admin); it is never given to a service.
 */
export async function provisionServiceDatabase(adminUrl: string, service: string, opts: ProvisionOptions = {}): Promise<{ role: string; database: string }> {
  const name = serviceRoleName(adminUrl, service);
  const admin = adminClient(adminUrl, 'postgres');
  await admin.connect();
  try {
    // One provisioner per role at a time (replicas starting together, npm start and a test):
    // concurrent ALTER ROLE and GRANT on the same row fail with "tuple concurrently updated".
    // Every provisioner is connected to `postgres`, so the advisory lock is shared; it goes with
    // the session if this process dies.
    await admin.query(`SELECT pg_advisory_lock(hashtext('keyway:provision:' || $1))`, [name]);
    const role = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name]);
    // 23505: two provisioners inserted into pg_authid at once.
    if (role.rowCount === 0) await racing(admin, `CREATE ROLE ${ident(name)} LOGIN`, ['42710', '23505']);
    // No superuser, no CREATEDB, no CREATEROLE: it owns its database and nothing more.
    await admin.query(`ALTER ROLE ${ident(name)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS`);
    if (opts.password !== undefined) await admin.query(`ALTER ROLE ${ident(name)} PASSWORD ${literal(opts.password)}`);
    const db = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (db.rowCount === 0) await racing(admin, `CREATE DATABASE ${ident(name)} OWNER ${ident(name)}`, ['42P04', '23505']);
    await admin.query(`ALTER DATABASE ${ident(name)} OWNER TO ${ident(name)}`);
    await admin.query(`REVOKE ALL ON DATABASE ${ident(name)} FROM PUBLIC`);
    await admin.query(`GRANT CONNECT, TEMPORARY ON DATABASE ${ident(name)} TO ${ident(name)}`);
    await adoptObjects(adminUrl, name);
  } finally {
    await admin.end();
  }
  return { role: name, database: name };
}

/**
 * A database the admin's migrations filled before the service had a role: its tables, views,
 * sequences and functions become the role's (objects of an extension stay with the extension).
 */
async function adoptObjects(adminUrl: string, name: string): Promise<void> {
  const db = adminClient(adminUrl, name);
  await db.connect();
  try {
    const { rows } = await db.query<{ sql: string }>(
      `SELECT format('ALTER %s %s OWNER TO %I',
                     CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
                     c.oid::regclass, $1::text) AS sql
         FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace
          AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
          AND pg_get_userbyid(c.relowner) <> $1
          -- a sequence owned by a column moves with its table
          AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
       UNION ALL
       SELECT format('ALTER %s %s OWNER TO %I', CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, p.oid::regprocedure, $1::text)
         FROM pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace
          AND p.prokind IN ('f', 'p')
          AND pg_get_userbyid(p.proowner) <> $1
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')`,
      [name],
    );
    for (const { sql } of rows) await db.query(sql);
  } finally {
    await db.end();
  }
}

/** Test clean-up: drops the roles whose names start with `namePrefix` (their databases first). */
export async function dropRoles(adminUrl: string, namePrefix: string): Promise<string[]> {
  const admin = adminClient(adminUrl, 'postgres');
  await admin.connect();
  try {
    const { rows } = await admin.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE left(rolname, length($1)) = $1', [namePrefix]);
    for (const { rolname } of rows) await racing(admin, `DROP ROLE IF EXISTS ${ident(rolname)}`, ['2BP01']);
    return rows.map((r) => r.rolname);
  } finally {
    await admin.end();
  }
}
