#!/usr/bin/env node
'use strict';
/**
 * `npm start`: install if needed, build, make sure Postgres, NATS and Redis answer, then run the
 * five services as child processes until Ctrl-C. Plain Node with no dependencies, so it runs on a
 * fresh clone before `npm install`.
 *
 * Environment: DATABASE_URL, NATS_URL, REDIS_URL, LOG_LEVEL, PORT (gateway, 3000),
 * ADMIN_PORT (the gateway's operator listener, 3100, always on loopback),
 * KEYWAY_ADMIN_TOKEN (generated and kept in .keyway/admin-token when unset),
 * KEYWAY_LOG_FORMAT=json (raw pino lines instead of the short form),
 * KEYWAY_READY_TIMEOUT_MS (60000), KEYWAY_STOP_TIMEOUT_MS (10000), KEYWAY_NATS_AUTH=1 (each service
 * its own NATS user on a nats-server of our own, NATS_AUTH_PORT 4223: docs/operations/walls.md).
 */
const { spawn } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const { existsSync, mkdirSync, readFileSync, writeFileSync } = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const readline = require('node:readline');
const { ROOT, log, warn, step, seconds, installDependencies, ensureServices, probe } = require('./lib/services');
const { walls } = require('./lib/walls');

const startedAt = Date.now();
const HOST = process.env.HOST || '127.0.0.1';
const GATEWAY_PORT = Number(process.env.PORT || 3000);
const ADMIN_PORT = Number(process.env.ADMIN_PORT || 3100);
const READY_TIMEOUT_MS = Number(process.env.KEYWAY_READY_TIMEOUT_MS || 60_000);
const STOP_TIMEOUT_MS = Number(process.env.KEYWAY_STOP_TIMEOUT_MS || 10_000);
const JSON_LOGS = process.env.KEYWAY_LOG_FORMAT === 'json';
const KEEP_LINES = 30;

/** Backing services first in the list only for log order; they all start at once. */
const APPS = [
  { name: 'identity', healthPort: 3001 },
  { name: 'contacts', healthPort: 3002 },
  { name: 'journeys', healthPort: 3003 },
  { name: 'audit-log', healthPort: 3004 },
  // The gateway answers /health on its public port; an inherited HEALTH_PORT must not reach it.
  // Its operator API (/admin/v1, /metrics) answers on ADMIN_PORT, on loopback whatever HOST says.
  { name: 'gateway', healthPort: GATEWAY_PORT, adminPort: ADMIN_PORT, env: { PORT: String(GATEWAY_PORT), HEALTH_PORT: '', ADMIN_PORT: String(ADMIN_PORT), ADMIN_HOST: '127.0.0.1' } },
];

// ---------------------------------------------------------------------------------------------
// Operator token

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function base62(length) {
  let out = '';
  while (out.length < length) {
    // Rejection sampling keeps every character equally likely (248 = 4 * 62).
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248 && out.length < length) out += BASE62[byte % 62];
    }
  }
  return out;
}

/** Returns { token, source }: from the environment, from .keyway/admin-token, or new. */
function adminToken() {
  if (process.env.KEYWAY_ADMIN_TOKEN) return { token: process.env.KEYWAY_ADMIN_TOKEN, source: 'env' };
  const dir = path.join(ROOT, '.keyway');
  const file = path.join(dir, 'admin-token');
  if (existsSync(file)) {
    const token = readFileSync(file, 'utf8').trim();
    if (token) return { token, source: 'file' };
  }
  const token = `kwadm_${base62(32)}`;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return { token, source: 'new' };
}

// ---------------------------------------------------------------------------------------------
// Logs

const useColor = process.stdout.isTTY && !process.env.NO_COLOR;
const COLORS = [36, 32, 33, 35, 34];
const paint = (code, text) => (useColor ? `\u001b[${code}m${text}\u001b[0m` : text);
const LEVELS = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const LEVEL_COLORS = { 40: 33, 50: 31, 60: 31 };
const width = Math.max(...APPS.map((a) => a.name.length));
const OMIT = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'v']);

/** A pino line becomes `HH:MM:SS.mmm LEVEL msg {rest}`; anything else passes through as is. */
function formatLine(line) {
  if (JSON_LOGS || !line.startsWith('{')) return line;
  let entry;
  try {
    entry = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof entry !== 'object' || entry === null || typeof entry.level !== 'number') return line;
  const time = new Date(entry.time ?? Date.now()).toISOString().slice(11, 23);
  const level = (LEVELS[entry.level] ?? String(entry.level)).padEnd(5);
  const rest = Object.fromEntries(Object.entries(entry).filter(([k]) => !OMIT.has(k)));
  const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
  return `${time} ${paint(LEVEL_COLORS[entry.level] ?? 0, level)} ${entry.msg ?? ''}${extra}`;
}

function pipeLines(stream, app, out) {
  const rl = readline.createInterface({ input: stream, crlfDelay: Infinity });
  rl.on('line', (line) => {
    app.lastLines.push(line);
    if (app.lastLines.length > KEEP_LINES) app.lastLines.shift();
    out.write(`${app.prefix} ${formatLine(line)}\n`);
  });
}

function lastLines(app, count = 15) {
  const lines = app.lastLines.slice(-count);
  if (lines.length === 0) return '    (it printed nothing)';
  return lines.map((l) => `    ${l}`).join('\n');
}

// ---------------------------------------------------------------------------------------------
// Children

let stopping = false;

function startApp(app, env, index) {
  app.prefix = paint(COLORS[index % COLORS.length], `${app.name.padEnd(width)} |`);
  app.lastLines = [];
  app.exited = null;
  // Own process group: a Ctrl-C in the terminal reaches only this script, which then sends one
  // SIGTERM to each service. (A second signal during Nest's shutdown would kill it mid-drain.)
  // V8 flags an app ships with (apps/<app>/package.json keyway.nodeOptions: the gateway's heap bounds).
  const nodeOptions = require(path.join(ROOT, 'apps', app.name, 'package.json')).keyway?.nodeOptions ?? '';
  app.child = spawn(process.execPath, [...nodeOptions.split(' ').filter(Boolean), path.join('apps', app.name, 'dist', 'main.js')], {
    cwd: ROOT,
    env: { ...env, HEALTH_PORT: String(app.healthPort), ...app.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  pipeLines(app.child.stdout, app, process.stdout);
  pipeLines(app.child.stderr, app, process.stderr);
  app.exitedPromise = new Promise((resolve) => {
    app.child.once('exit', (code, signal) => {
      app.exited = { code, signal };
      resolve();
      if (!stopping) {
        warn(`${app.name} exited (${signal ? `signal ${signal}` : `code ${code}`}); its last lines:\n${lastLines(app)}`);
        void shutdown(1, `${app.name} died`);
      }
    });
  });
  app.child.once('error', (err) => warn(`${app.name} could not be started: ${err.message}`));
}

async function stopApp(app) {
  if (!app.child || app.exited) return;
  try {
    process.kill(app.child.pid, 'SIGTERM');
  } catch {
    return;
  }
  const timer = new Promise((resolve) => setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS).unref());
  if ((await Promise.race([app.exitedPromise, timer])) === 'timeout' && !app.exited) {
    warn(`${app.name} did not stop within ${seconds(STOP_TIMEOUT_MS)}: SIGKILL`);
    try {
      process.kill(app.child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await app.exitedPromise;
  }
}

let running = [];

async function shutdown(code, reason) {
  if (stopping) return;
  stopping = true;
  const alive = running.filter((a) => a.child && !a.exited);
  if (alive.length > 0) log(`${reason}: stopping ${alive.map((a) => a.name).join(', ')}`);
  await Promise.all(alive.map(stopApp));
  log('stopped');
  process.exit(code);
}

// If this script dies some other way, take the services with it rather than orphan them.
process.on('exit', () => {
  for (const app of running) {
    if (app.child && !app.exited) {
      try {
        process.kill(app.child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
});

function healthStatus(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: HOST === '0.0.0.0' ? '127.0.0.1' : HOST, port, path: '/health/ready', timeout: 2_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body: body.slice(0, 500) }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer in 2 s')));
    req.on('error', (err) => resolve({ status: 0, body: err.message }));
  });
}

async function waitReady(apps) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  const pending = new Set(apps);
  const last = new Map();
  while (pending.size > 0 && !stopping) {
    await Promise.all(
      [...pending].map(async (app) => {
        const h = await healthStatus(app.healthPort);
        last.set(app, h);
        if (h.status === 200) {
          pending.delete(app);
          log(`${app.name} is ready (${seconds(Date.now() - app.spawnedAt)})`);
        }
      }),
    );
    if (pending.size === 0 || stopping) break;
    if (Date.now() > deadline) {
      for (const app of pending) {
        const h = last.get(app);
        warn(
          `${app.name} is not ready after ${seconds(READY_TIMEOUT_MS)}: http://127.0.0.1:${app.healthPort}/health/ready ` +
            `answered ${h && h.status ? `${h.status} ${h.body}` : `nothing (${h ? h.body : 'not asked'})`}; its last lines:\n${lastLines(app)}`,
        );
      }
      await shutdown(1, 'not ready in time');
      return;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

// ---------------------------------------------------------------------------------------------

async function main() {
  installDependencies();
  step('build', 'npx', ['turbo', 'run', 'build', '--output-logs=errors-only']);
  const services = await ensureServices();

  const apps = APPS.filter((app) => {
    if (existsSync(path.join(ROOT, 'apps', app.name, 'src', 'main.ts'))) return true;
    warn(`apps/${app.name} has no src/main.ts yet: not starting it (npm start needs all five)`);
    return false;
  });
  for (const app of apps) {
    if (!existsSync(path.join(ROOT, 'apps', app.name, 'dist', 'main.js'))) {
      warn(`apps/${app.name}/dist/main.js is missing after the build`);
      process.exit(1);
    }
  }
  const busy = [];
  for (const app of apps) {
    if (await probe('127.0.0.1', app.healthPort, { timeoutMs: 300 })) busy.push(`${app.healthPort} (${app.name})`);
    if (app.adminPort && (await probe('127.0.0.1', app.adminPort, { timeoutMs: 300 }))) busy.push(`${app.adminPort} (${app.name} admin)`);
  }
  if (busy.length > 0) {
    warn(`port ${busy.join(', ')} already in use: is another \`npm start\` running? Stop it, or set PORT and ADMIN_PORT for the gateway.`);
    process.exit(1);
  }

  const { token, source } = adminToken();
  const env = {
    ...process.env,
    ...services.urls,
    HOST,
    KEYWAY_ADMIN_TOKEN: token,
    LOG_LEVEL: process.env.LOG_LEVEL || 'info',
  };
  if (!services.redis) delete env.REDIS_URL;
  // Each service its own Postgres role, and with KEYWAY_NATS_AUTH=1 its own NATS user (lib/walls.js).
  const walled = await walls(env, apps.map((a) => a.name));
  for (const app of apps) app.env = { ...app.env, ...walled[app.name] };

  running = apps;
  process.on('SIGINT', () => void shutdown(0, 'SIGINT'));
  process.on('SIGTERM', () => void shutdown(0, 'SIGTERM'));

  const spawnedAt = Date.now();
  apps.forEach((app, i) => {
    app.spawnedAt = spawnedAt;
    startApp(app, env, i);
  });
  await waitReady(apps);
  if (stopping) return;

  const base = `http://127.0.0.1:${GATEWAY_PORT}`;
  const adminBase = `http://127.0.0.1:${ADMIN_PORT}`;
  const lines = [
    '',
    `Keyway is ready in ${seconds(Date.now() - startedAt)} (services: ${seconds(Date.now() - spawnedAt)} from spawn to ready).`,
    `  gateway:  ${base}`,
    `  API docs: ${base}/docs`,
    `  Dashboard: ${base}/dashboard/`,
    `  operator API: ${adminBase}/admin/v1 (loopback only; KEYWAY_ADMIN_URL=${adminBase} for the keyway CLI)`,
    `  rate limits: ${services.redis ? `Redis at ${services.urls.REDIS_URL}` : 'in memory (Redis does not answer)'}`,
  ];
  if (source === 'new') {
    lines.push(`  operator token (generated, shown once, kept in .keyway/admin-token): ${token}`);
  } else if (source === 'file') {
    lines.push('  operator token: in .keyway/admin-token');
  }
  lines.push(
    '',
    'Create the first tenant (its root key is in the answer, shown once):',
    ...(source === 'env' ? [] : ['  export KEYWAY_ADMIN_TOKEN=$(cat .keyway/admin-token)']),
    `  curl -X POST ${adminBase}/admin/v1/tenants -H "Authorization: Bearer $KEYWAY_ADMIN_TOKEN" -H 'content-type: application/json' -d '{"name":"Acme"}'`,
    '',
    'Ctrl-C stops every service.',
    '',
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((err) => {
  warn(err instanceof Error ? (err.stack ?? err.message) : String(err));
  void shutdown(1, 'start failed');
});
