#!/usr/bin/env node
'use strict';
/**
 * `npm run db:provision`: gives each service its own Postgres role owning its own database, and
 * revokes CONNECT from PUBLIC (packages/database roles.ts; docs/operations/walls.md). Idempotent:
 * run it before a deploy, and again to rotate a password.
 *
 *   DATABASE_ADMIN_URL  the cluster admin (may create roles and databases); else DATABASE_URL,
 *                       else postgres://postgres@127.0.0.1:5432/keyway. Its path is the base name.
 *   DATABASE_PASSWORD_<SERVICE>  (IDENTITY, CONTACTS, JOURNEYS, AUDIT_LOG) the role's password;
 *                       unset: the role keeps the one it has (none on a trust-only machine).
 *
 * Prints, per service, the DATABASE_URL to give it (without the password: add it there).
 */
const path = require('node:path');

const SERVICES = ['identity', 'contacts', 'journeys', 'audit-log'];
const db = require(path.join(__dirname, '..', 'packages', 'database', 'dist', 'index.js'));

async function main() {
  const admin = process.env.DATABASE_ADMIN_URL || process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/keyway';
  for (const service of SERVICES) {
    const password = process.env[`DATABASE_PASSWORD_${service.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`] || undefined;
    const { role } = await db.provisionServiceDatabase(admin, service, { password });
    process.stdout.write(`${service}: role and database ${role}${password ? ' (password set)' : ''}; DATABASE_URL=${db.serviceRoleUrl(admin, service)}\n`);
  }
}

main().catch((err) => {
  process.stderr.write(`db:provision failed: ${err.message}\n`);
  process.exit(1);
});
