'use strict';
/**
 * The internal plane's walls for `npm start` (docs/operations/walls.md):
 *  - Postgres: each service its own role owning its database (packages/database roles.ts),
 *    provisioned with the admin's DATABASE_URL; each service then connects as its role.
 *  - NATS (KEYWAY_NATS_AUTH=1): a nats-server of our own on NATS_AUTH_PORT (4223) with
 *    infra/nats/auth.conf and a fresh password per user (kept in .keyway/nats-passwords.json, 0600),
 *    each service connecting as its own user. Off by default: the machine's nats-server on 4222 has
 *    no users, and tests and tools use it as it is.
 * Needs the build (packages/database/dist), so it runs after it.
 */
const { spawn } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const { existsSync, mkdirSync, readFileSync, writeFileSync } = require('node:fs');
const path = require('node:path');
const { ROOT, log, warn, probe } = require('./services');

const DB_SERVICES = ['identity', 'contacts', 'journeys', 'audit-log'];
const NATS_BINARIES = [process.env.NATS_SERVER_BIN, '/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'];

/** Roles for the services with a database; returns { app: DATABASE_URL } (empty if it cannot). */
async function provisionRoles(databaseUrl) {
  const db = require(path.join(ROOT, 'packages', 'database', 'dist', 'index.js'));
  const urls = {};
  try {
    for (const app of DB_SERVICES) {
      await db.provisionServiceDatabase(databaseUrl, app);
      urls[app] = db.serviceRoleUrl(databaseUrl, app);
    }
    log(`postgres: each service connects as its own role (${DB_SERVICES.map((a) => db.serviceRoleName(databaseUrl, a)).join(', ')})`);
    return urls;
  } catch (err) {
    // A DATABASE_URL that is not the cluster's admin (no CREATEROLE): run as before, one role for all.
    warn(`postgres: could not provision the services' roles (${err.message}); every service connects as DATABASE_URL's user`);
    return {};
  }
}

const passwordEnv = (user) => `NATS_PASSWORD_${user.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;

/** Starts our own nats-server with the users; returns { url, envOf(app) } or undefined when off. */
async function lockedNats() {
  if (process.env.KEYWAY_NATS_AUTH !== '1') return undefined;
  const bin = NATS_BINARIES.find((p) => p && existsSync(p));
  if (!bin) throw new Error('KEYWAY_NATS_AUTH=1 needs nats-server (apt-get install nats-server)');
  const port = Number(process.env.NATS_AUTH_PORT || 4223);
  const dir = path.join(ROOT, '.keyway', 'nats-auth');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const conf = readFileSync(path.join(ROOT, 'infra', 'nats', 'auth.conf'), 'utf8');
  const users = [...conf.matchAll(/user: "([^"]+)"/g)].map((m) => m[1]);
  const file = path.join(ROOT, '.keyway', 'nats-passwords.json');
  const kept = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  const passwords = Object.fromEntries(users.map((u) => [u, kept[u] || randomBytes(24).toString('base64url')]));
  writeFileSync(file, `${JSON.stringify(passwords, null, 2)}\n`, { mode: 0o600 });
  // The server config includes the generated users beside it (includes resolve relative to it).
  writeFileSync(path.join(dir, 'auth.conf'), conf);
  writeFileSync(path.join(dir, 'server.conf'), `listen: 127.0.0.1:${port}\njetstream { store_dir: ${JSON.stringify(path.join(dir, 'store'))} }\ninclude auth.conf\n`);
  if (await probe('127.0.0.1', port, { timeoutMs: 300 })) throw new Error(`port ${port} (NATS_AUTH_PORT) is already in use`);
  const env = { PATH: process.env.PATH, ...Object.fromEntries(users.map((u) => [passwordEnv(u), passwords[u]])) };
  // Its own process group, like the services: a Ctrl-C must not stop it before they have drained.
  const child = spawn(bin, ['-c', path.join(dir, 'server.conf'), '-l', path.join(dir, 'server.log')], { env, stdio: 'ignore', detached: true });
  process.on('exit', () => child.exitCode === null && child.kill('SIGTERM'));
  const deadline = Date.now() + 10_000;
  while (!(await probe('127.0.0.1', port, { timeoutMs: 300 }))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`nats-server with infra/nats/auth.conf did not start: see ${path.join(dir, 'server.log')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const url = `nats://127.0.0.1:${port}`;
  log(`nats: our own server at ${url} with infra/nats/auth.conf; each service its own user (passwords in .keyway/nats-passwords.json)`);
  return { url, envOf: (app) => ({ NATS_URL: url, NATS_USER: app, NATS_PASSWORD: passwords[app] }) };
}

/** What each app gets on top of the shared environment: { app: { DATABASE_URL?, NATS_* } }. */
async function walls(env, apps) {
  const roles = await provisionRoles(env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/keyway');
  const nats = await lockedNats();
  return Object.fromEntries(apps.map((app) => [app, { ...(roles[app] ? { DATABASE_URL: roles[app] } : {}), ...(nats ? nats.envOf(app) : {}) }]));
}

module.exports = { walls };
