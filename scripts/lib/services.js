'use strict';
/**
 * What `npm start` and `npm test` share: installing dependencies, timing steps, and making sure
 * Postgres, NATS (with JetStream) and Redis answer, starting the machine's own servers when they
 * are installed but stopped. Plain Node (no dependencies), because it runs before `npm install`.
 */
const { spawnSync, execSync } = require('node:child_process');
const { existsSync, readdirSync } = require('node:fs');
const net = require('node:net');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const APT_HINT = 'apt-get install postgresql nats-server redis-server';

const log = (msg) => process.stdout.write(`[keyway] ${msg}\n`);
const warn = (msg) => process.stderr.write(`[keyway] ${msg}\n`);

function fail(msg, code = 1) {
  warn(msg);
  process.exit(code);
}

const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;

/** Runs one step, prints its wall time, and stops the script (with the step's code) if it fails. */
function step(name, cmd, args, opts = {}) {
  const started = Date.now();
  log(`${name}: ${[cmd, ...args].join(' ')}`);
  const r = spawnSync(cmd, args, {
    cwd: ROOT,
    stdio: 'inherit',
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1', ...(opts.env ?? {}) },
  });
  const took = Date.now() - started;
  const code = r.status ?? (r.signal ? 128 : 1);
  log(`${name}: ${code === 0 ? 'done' : `failed (exit ${code})`} in ${seconds(took)}`);
  if (code !== 0 && !opts.allowFailure) process.exit(code);
  return { code, took };
}

function installDependencies() {
  if (existsSync(path.join(ROOT, 'node_modules'))) return;
  if (!existsSync(path.join(ROOT, 'package-lock.json'))) {
    step('install', 'npm', ['install', '--no-audit', '--no-fund']);
    return;
  }
  // `npm ci` refuses a lockfile that lacks other platforms' optional binaries (as ours does: the
  // registry reached here does not serve them). Then install from the same lockfile with
  // `npm install --no-save`, which resolves the same versions and leaves the lockfile as it is.
  if (step('install', 'npm', ['ci', '--no-audit', '--no-fund'], { allowFailure: true }).code !== 0) {
    warn('npm ci failed: installing with npm install --no-save instead');
    step('install', 'npm', ['install', '--no-save', '--no-audit', '--no-fund']);
  }
}

/** Where a URL points: first host of a comma-separated list, with the scheme's default port. */
function endpoint(urlText, defaultPort) {
  const first = urlText.split(',')[0].trim();
  const u = new URL(first);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || defaultPort) };
}

const isLocal = (host) => ['127.0.0.1', 'localhost', '::1', '0.0.0.0'].includes(host) || host.startsWith('127.');

/**
 * Opens a TCP connection and lets `check` read from it: resolves true when check says so (or,
 * without a check, once connected), false on error or timeout.
 */
function probe(host, port, { timeoutMs = 1500, send, check } = {}) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    let buffered = '';
    let settled = false;
    const done = (ok) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => {
      if (!check) return done(true);
      if (send) socket.write(send);
    });
    socket.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      const verdict = check(buffered);
      if (verdict !== undefined) done(verdict);
    });
  });
}

/** NATS greets with INFO {...}; JetStream must be on (`"jetstream":true`), or streams fail later. */
const natsCheck = (text) => {
  const line = text.split('\r\n')[0];
  if (!text.includes('\r\n')) return undefined;
  if (!line.startsWith('INFO ')) return false;
  try {
    return JSON.parse(line.slice(5)).jetstream === true ? true : 'no-jetstream';
  } catch {
    return false;
  }
};

const redisCheck = (text) => (text.includes('\r\n') ? text.startsWith('+PONG') || text.startsWith('-NOAUTH') : undefined);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function commandExists(bin) {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}

function firstExisting(paths) {
  return paths.find((p) => existsSync(p));
}

function runShell(cmd) {
  log(`starting: ${cmd}`);
  try {
    execSync(cmd, { stdio: ['ignore', 'inherit', 'inherit'] });
    return true;
  } catch (err) {
    warn(`  that command failed: ${err.message.split('\n')[0]}`);
    return false;
  }
}

/** The machine's own start commands (see the machine notes); each returns false if not installed. */
const starters = {
  postgres() {
    if (!commandExists('pg_ctlcluster') || !existsSync('/etc/postgresql')) return false;
    const versions = readdirSync('/etc/postgresql');
    if (versions.length === 0) return false;
    return runShell(`pg_ctlcluster --skip-systemctl-redirect ${versions.sort().at(-1)} main start`);
  },
  nats() {
    const bin = firstExisting(NATS_BINARIES);
    if (!bin) return false;
    const storeDir = existsSync('/var/lib/nats-server') ? '/var/lib/nats-server' : path.join(ROOT, '.keyway', 'nats');
    const logFile = existsSync('/var/log') ? '/var/log/nats-server.log' : path.join(ROOT, '.keyway', 'nats-server.log');
    if (commandExists('start-stop-daemon')) {
      return runShell(
        `start-stop-daemon --start --oknodo --background --exec ${bin} -- -a 127.0.0.1 -p 4222 -js -sd ${storeDir} -l ${logFile}`,
      );
    }
    return runShell(`sh -c '${bin} -a 127.0.0.1 -p 4222 -js -sd ${storeDir} -l ${logFile} >/dev/null 2>&1 &'`);
  },
  redis() {
    if (!commandExists('redis-server')) return false;
    const dir = existsSync('/var/lib/redis') ? '/var/lib/redis' : '/tmp';
    const logFile = existsSync('/var/log/redis') ? '/var/log/redis/ci.log' : '/tmp/keyway-redis.log';
    return runShell(
      `redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir ${dir} --logfile ${logFile}`,
    );
  },
};

const NATS_BINARIES = ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'];

function isInstalled(key) {
  if (key === 'postgres') return commandExists('pg_ctlcluster') && existsSync('/etc/postgresql');
  if (key === 'nats') return !!firstExisting(NATS_BINARIES) || commandExists('nats-server');
  return commandExists('redis-server');
}

const SERVICES = [
  {
    key: 'postgres',
    label: 'Postgres',
    env: 'DATABASE_URL',
    fallback: 'postgres://postgres@127.0.0.1:5432/keyway',
    defaultPort: 5432,
    apt: 'postgresql',
    optional: false,
  },
  {
    key: 'nats',
    label: 'NATS with JetStream',
    env: 'NATS_URL',
    fallback: 'nats://127.0.0.1:4222',
    defaultPort: 4222,
    apt: 'nats-server',
    check: natsCheck,
    optional: false,
  },
  {
    key: 'redis',
    label: 'Redis',
    env: 'REDIS_URL',
    fallback: 'redis://127.0.0.1:6379',
    defaultPort: 6379,
    apt: 'redis-server',
    send: 'PING\r\n',
    check: redisCheck,
    optional: true,
  },
];

async function answers(svc, where) {
  return probe(where.host, where.port, { send: svc.send, check: svc.check });
}

/**
 * Makes sure each backing service answers; Postgres and NATS are required, Redis is not.
 * Returns { postgres, nats, redis } (booleans) and { urls } with the URL each one answered at.
 */
async function ensureServices({ quiet = false } = {}) {
  const started = Date.now();
  const result = { urls: {} };
  const problems = [];
  let missing = false;
  for (const svc of SERVICES) {
    const urlText = process.env[svc.env] || svc.fallback;
    let where;
    try {
      where = endpoint(urlText, svc.defaultPort);
    } catch {
      fail(`${svc.env} is not a valid URL: ${urlText}`, 78);
    }
    let ok = await answers(svc, where);
    if (ok === 'no-jetstream') {
      problems.push(`${svc.label} at ${where.host}:${where.port} answers but JetStream is off: restart it with -js`);
      result[svc.key] = false;
      continue;
    }
    if (!ok && isLocal(where.host) && where.port === svc.defaultPort && starters[svc.key]()) {
      const deadline = Date.now() + 20_000;
      while (!ok && Date.now() < deadline) {
        await sleep(250);
        ok = (await answers(svc, where)) === true;
      }
    }
    result[svc.key] = ok === true;
    if (ok === true) {
      result.urls[svc.env] = urlText;
      if (!quiet) log(`${svc.label} answers at ${where.host}:${where.port}`);
      continue;
    }
    const installed = isInstalled(svc.key);
    const managed = isLocal(where.host) && where.port === svc.defaultPort;
    let why = `${svc.label} does not answer at ${where.host}:${where.port} (${svc.env})`;
    if (!managed) why += ': it is not on this machine\'s standard address, so start it yourself or change the variable';
    else if (installed) why += ' and did not come up after starting it: see its log under /var/log';
    else {
      why += ` and is not installed: apt-get install ${svc.apt}`;
      missing = true;
    }
    if (svc.optional) {
      warn(`${why}. Going on without it: the gateway limits requests in memory (limits are per gateway process, not shared).`);
    } else {
      problems.push(why);
    }
  }
  if (problems.length > 0) {
    const hint = missing ? `\n[keyway] To install every backing service: ${APT_HINT}` : '';
    fail(`${problems.join('\n[keyway] ')}${hint}`);
  }
  if (!quiet) log(`services: ready in ${seconds(Date.now() - started)}`);
  return result;
}

module.exports = { ROOT, log, warn, step, seconds, installDependencies, ensureServices, probe };
