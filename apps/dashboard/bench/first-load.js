// The dashboard's first load, in headless Chromium against the built gateway and identity, with 50
// keys in the tenant: the JavaScript transferred (gzipped, as the gateway sends it; budget < 250 KB)
// and the time from navigation start until the key list shows all 50 rows (target < 1 s), each
// run in a fresh browser context (a cold cache, a signed-in cookie). Asserts nothing.
//   Run: npm run bench -- dashboard-first-load     BENCH_RUNS (10), CHROMIUM_PATH (/usr/bin/chromium)
// An ES module (the dashboard's package is `"type": "module"`); bench/lib.js is CommonJS.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const { build, startNats, startApp, dropDatabases, stats, fmt } = require('../../../bench/lib.js');

const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const KEYS = 50;

async function call(base, method, path, { body, headers = {} } = {}) {
  const res = await fetch(`${base}${path}`, { method, headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

async function main() {
  build(['gateway', 'identity', 'dashboard']);
  const run = `keyway_bench_dash_${Date.now().toString(36)}`;
  const adminToken = randomBytes(24).toString('hex');
  const nats = await startNats();
  const started = [];
  let browser;
  try {
    const common = { NATS_URL: nats.url, DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${run}` };
    started.push(await startApp('identity', common));
    const gw = await startApp('gateway', { ...common, KEYWAY_ADMIN_TOKEN: adminToken });
    started.push(gw);
    const password = 'bench-password-1';
    const made = await call(gw.adminUrl, 'POST', '/admin/v1/tenants', { body: { name: 'Bench', admin: { name: 'Admin', email: 'admin@bench.test', password } }, headers: { authorization: `Bearer ${adminToken}` } });
    if (made.status !== 201) throw new Error(`POST /admin/v1/tenants: ${made.status} ${JSON.stringify(made.body)}`);
    // The root key is one; 49 more, made with it.
    for (let i = 1; i < KEYS; i++) {
      const r = await call(gw.url, 'POST', '/v1/keys', { body: { name: `Service ${String(i).padStart(2, '0')}`, scopes: ['contacts:read'] }, headers: { authorization: `Bearer ${made.body.root_key.key}` } });
      if (r.status !== 201) throw new Error(`POST /v1/keys: ${r.status} ${JSON.stringify(r.body)}`);
    }
    const signIn = await call(gw.url, 'POST', '/auth/v1/session', { body: { email: 'admin@bench.test', password } });
    const cookie = /^kw_session=([^;]+)/.exec(signIn.headers.get('set-cookie') ?? '')?.[1];
    if (signIn.status !== 200 || !cookie) throw new Error(`sign-in: ${signIn.status}`);

    browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
    const shown = [];
    const phases = {};
    let js = 0;
    let css = 0;
    let files = [];
    for (let i = 0; i < RUNS + 1; i++) {
      const context = await browser.newContext({ baseURL: gw.url });
      // A Secure, host-only cookie can only be set for an https URL here; Chromium
      // sends it to http://127.0.0.1 as well (loopback is a secure origin), as after a real sign-in.
      await context.addCookies([{ name: 'kw_session', value: cookie, url: gw.url.replace(/^http:/, 'https:'), httpOnly: true, secure: true, sameSite: 'Strict' }]);
      const page = await context.newPage();
      const responses = [];
      page.on('response', (r) => responses.push(r));
      await page.goto('/dashboard/');
      // 50 key rows and the header row.
      await page.getByRole('row').nth(KEYS).waitFor();
      const ms = await page.evaluate(() => performance.now());
      if (i > 0) shown.push(ms); // the first run warms the gateway and identity up
      if (i > 0) {
        // Where the time goes: when each request started and ended after navigation start.
        const entries = await page.evaluate(() => performance.getEntriesByType('resource').map((e) => [new URL(e.name).pathname, e.startTime, e.responseEnd]));
        for (const [path, start, end] of [['document', 0, await page.evaluate(() => performance.getEntriesByType('navigation')[0].responseEnd)], ...entries]) {
          const name = path.replace(/-[A-Za-z0-9_-]{8}\.(js|css)$/, '.$1');
          (phases[name] ??= []).push([start, end]);
        }
      }
      if (i === 0) {
        const sized = await Promise.all(responses.map(async (r) => ({ url: r.url(), type: r.request().resourceType(), bytes: (await r.request().sizes()).responseBodySize })));
        js = sized.filter((s) => s.type === 'script').reduce((n, s) => n + s.bytes, 0);
        css = sized.filter((s) => s.type === 'stylesheet').reduce((n, s) => n + s.bytes, 0);
        files = sized.filter((s) => s.type === 'script' || s.type === 'stylesheet').map((s) => `${new URL(s.url).pathname} ${fmt(s.bytes / 1024, 1)} KB`);
      }
      await context.close();
    }
    const s = stats(shown);
    console.log(`\nDashboard first load (/dashboard/, signed in, ${KEYS} keys), ${RUNS} cold loads in headless Chromium`);
    console.log(`  JavaScript transferred (gzip): ${fmt(js / 1024, 1)} KB   (budget 250 KB)   CSS: ${fmt(css / 1024, 1)} KB`);
    for (const f of files) console.log(`    ${f}`);
    console.log(`  key list shown (all ${KEYS} rows) after navigation start: p50 ${fmt(s.p50)} ms   max ${fmt(s.max)} ms   (target < 1,000 ms)`);
    console.log('  median start → end of each request after navigation start:');
    for (const [name, spans] of Object.entries(phases)) console.log(`    ${name.padEnd(40)} ${fmt(stats(spans.map((x) => x[0])).p50)} → ${fmt(stats(spans.map((x) => x[1])).p50)} ms`);
    console.log(`  load average at the end (1 min): ${fmt(require('node:os').loadavg()[0], 2)}   (other work on the machine skews these)`);
  } finally {
    await browser?.close();
    for (const p of started.reverse()) await p.stop().catch(() => undefined);
    await nats.stop();
    await dropDatabases(run).catch(() => undefined);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
