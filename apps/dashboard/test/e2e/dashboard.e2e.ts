import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CreatedTenant } from '@keyway/contracts';
import { eventually, REPO_ROOT, ServiceProcess, startInfra, type TestInfra } from '@keyway/testing';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/**
 * The dashboard in a real browser (issue 10): Debian's chromium driven by playwright-core against
 * the built gateway, identity and audit-log as child processes. A member signs in and walks a
 * key's whole life through the UI while the test calls /v1/whoami with the key's secret as a
 * customer's backend would. Any Content-Security-Policy violation fails the test; axe-core checks
 * each page; screenshots land in artifacts/dashboard/ (git-ignored).
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const DASHBOARD_DIST = join(REPO_ROOT, 'apps', 'dashboard', 'dist');
const ARTIFACTS = join(REPO_ROOT, 'artifacts', 'dashboard');
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

interface Violation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

describe('dashboard: Settings → API access in headless Chromium', () => {
  const adminToken = `kwadm_${randomBytes(24).toString('hex')}`;
  const password = `pw-${randomBytes(8).toString('hex')}`;
  let infra: TestInfra | undefined;
  let processes: ServiceProcess[] = [];
  let gateway: ServiceProcess;
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let page: Page;
  let acme: CreatedTenant;
  /** CSP violations and uncaught errors seen by any page: must stay empty. */
  const problems: string[] = [];

  const whoami = async (key: string) => {
    const r = await fetch(`${gateway.url}/v1/whoami`, { headers: { authorization: `Bearer ${key}` } });
    return { status: r.status, code: ((await r.json()) as { code?: string }).code };
  };

  /** axe-core, from its own pinned file, evaluated through DevTools (which the page's CSP does not govern). */
  async function axe(label: string): Promise<void> {
    await page.evaluate(AXE);
    const violations = await page.evaluate(async () => {
      const r = await (window as unknown as { axe: { run: (ctx: Document, o: object) => Promise<{ violations: Violation[] }> } }).axe.run(document, { resultTypes: ['violations'] });
      return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target })) }));
    });
    const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    expect({ page: label, violations: bad }).toEqual({ page: label, violations: [] });
  }

  /** Elements that stick out of a narrow viewport (empty when the page fits). */
  const overflowing = (p: Page) =>
    p.evaluate(() => {
      const width = document.documentElement.scrollWidth;
      if (width <= window.innerWidth) return [];
      // Wide tables scroll inside their own region: what sticks out beyond one is the culprit.
      const culprits = Array.from(document.querySelectorAll('body *'))
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5 && (e.classList.contains('table-wrap') || !e.closest('.table-wrap')))
        .map((e) => `${e.tagName.toLowerCase()}.${String(e.className)} ${Math.round(e.getBoundingClientRect().right)}px`);
      return [`document ${width}px wide`, ...culprits.slice(0, 5)];
    });

  /** A page in a browser context of its own (no cookie from another test). */
  async function openPage(width = 1280, height = 900): Promise<Page> {
    context = await browser!.newContext({ baseURL: gateway.url, permissions: ['clipboard-read', 'clipboard-write'] });
    const p = await context.newPage();
    await p.setViewportSize({ width, height });
    p.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    p.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    return p;
  }

  async function signIn(p: Page, email: string, pass: string): Promise<void> {
    await p.getByLabel('Email').fill(email);
    await p.getByLabel('Password').fill(pass);
    await p.getByRole('button', { name: 'Sign in' }).click();
  }

  /** The secret from the show-once dialog; closes it with "Done". */
  async function readSecretOnce(shot?: string): Promise<string> {
    const dialog = page.getByRole('alertdialog', { name: 'Copy your new API key' });
    await dialog.waitFor();
    const secret = (await dialog.getByLabel('Your new API key').textContent())!.trim();
    expect(secret).toMatch(/^kw_live_[a-z0-9]{8}_[A-Za-z0-9]{38}$/);
    await dialog.getByText(/will not be shown again/).waitFor();
    await dialog.getByRole('button', { name: 'Copy' }).click();
    await dialog.getByText('Copied to the clipboard.').waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(secret);
    if (shot) {
      await page.screenshot({ path: join(ARTIFACTS, shot) });
      await axe('show-once dialog');
    }
    // The clipboard held it for the copy test only.
    await page.evaluate(() => navigator.clipboard.writeText(''));
    await dialog.getByRole('button', { name: 'Done' }).click();
    await dialog.waitFor({ state: 'detached' });
    return secret;
  }

  /** Nowhere in the page or its storage once the dialog is gone. */
  async function expectSecretGone(secret: string): Promise<void> {
    const found = await page.evaluate(async (s) => {
      const where: string[] = [];
      if (document.documentElement.outerHTML.includes(s)) where.push('DOM');
      for (const [name, store] of [['localStorage', localStorage], ['sessionStorage', sessionStorage]] as const) {
        for (let i = 0; i < store.length; i++) {
          const k = store.key(i)!;
          if (k.includes(s) || (store.getItem(k) ?? '').includes(s)) where.push(name);
        }
      }
      for (const info of await indexedDB.databases()) {
        const db = await new Promise<IDBDatabase>((ok, fail) => {
          const r = indexedDB.open(info.name!);
          r.onsuccess = () => ok(r.result);
          r.onerror = () => fail(r.error);
        });
        for (const storeName of Array.from(db.objectStoreNames)) {
          const all = await new Promise<unknown[]>((ok) => {
            const r = db.transaction(storeName).objectStore(storeName).getAll();
            r.onsuccess = () => ok(r.result as unknown[]);
          });
          if (JSON.stringify(all).includes(s)) where.push(`IndexedDB ${info.name}/${storeName}`);
        }
        db.close();
      }
      return where;
    }, secret);
    expect(found).toEqual([]);
  }

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: apt-get install chromium (.ci/run does), or set CHROMIUM_PATH`);
    if (!existsSync(join(DASHBOARD_DIST, 'index.html'))) {
      execFileSync('npx', ['turbo', 'run', 'build', '--filter=@keyway/dashboard', '--output-logs=errors-only'], { cwd: REPO_ROOT, stdio: 'ignore', env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' } });
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    infra = await startInfra('dashboard_e2e');
    const identity = new ServiceProcess('identity', infra.env);
    await identity.start();
    const audit = new ServiceProcess('audit-log', infra.env);
    gateway = new ServiceProcess('gateway', { ...infra.env, KEYWAY_ADMIN_TOKEN: adminToken, USAGE_FLUSH_MS: '200' });
    processes = [identity, audit, gateway];
    await Promise.all([audit.start(), gateway.start(), (async () => (browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })))()]);
    const r = await fetch(`${gateway.adminUrl}/admin/v1/tenants`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Acme', admin: { name: 'Alice Admin', email: 'alice@acme.test', password } }),
    });
    expect(r.status).toBe(201);
    acme = (await r.json()) as CreatedTenant;
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await Promise.all(processes.map((p) => p.kill('SIGTERM')));
    await infra?.stop();
  });

  afterEach(async () => {
    await context?.close();
    expect(problems).toEqual([]);
  });

  it('a key from creation to revocation: shown once, switched off and on, regenerated, revoked, each step in its logs with the member as actor', async () => {
    page = await openPage();
    const loaded = await page.goto('/dashboard/');
    expect(loaded!.headers()['content-security-policy']).toMatch(/^default-src 'self'; style-src 'self'; frame-ancestors 'none'/);
    await page.getByRole('heading', { name: 'Sign in to Keyway' }).waitFor();
    await axe('sign-in');
    await signIn(page, 'alice@acme.test', password);
    // The tenant's root key is listed; the test environment has no key yet: its empty state.
    await page.getByRole('row').filter({ hasText: 'Root key' }).waitFor();
    await page.getByLabel('Environment').selectOption('test');
    await page.getByText('No test API keys yet').waitFor();
    await axe('API access, empty');
    await page.getByLabel('Environment').selectOption('live');

    // Create: name, contacts read, the rest left as they are.
    await page.getByRole('button', { name: 'Create key' }).click();
    const form = page.getByRole('dialog', { name: 'Create an API key' });
    await form.getByLabel('Name').fill('Backend');
    await form.getByRole('group', { name: 'Contacts and accounts' }).getByLabel('Read', { exact: true }).check();
    await axe('create key form');
    await form.getByRole('button', { name: 'Create key' }).click();
    const secret = await readSecretOnce('show-once-dialog.png');
    await expectSecretGone(secret);
    expect(await whoami(secret)).toEqual({ status: 200, code: undefined });

    const row = page.getByRole('row').filter({ hasText: 'Backend' });
    await row.waitFor();
    await expect(row.textContent()).resolves.toContain(secret.slice(0, 'kw_live_'.length + 8));
    await expect(row.textContent()).resolves.not.toContain(secret);
    await page.screenshot({ path: join(ARTIFACTS, 'key-list.png') });
    await axe('API access, one key');

    // The key page: off, on.
    await row.getByRole('link', { name: 'Backend' }).click();
    await page.getByRole('heading', { name: 'Backend' }).waitFor();
    const enabled = page.getByRole('switch', { name: 'Enabled' });
    expect(await enabled.isChecked()).toBe(true);
    await axe('key page');
    await enabled.click({ force: true });
    await page.getByText('Disabled', { exact: true }).first().waitFor();
    expect(await whoami(secret)).toEqual({ status: 401, code: 'key_disabled' });
    await enabled.click({ force: true });
    await page.getByText('Active', { exact: true }).first().waitFor();
    expect(await whoami(secret)).toEqual({ status: 200, code: undefined });

    // Regenerate, no grace: the old secret stops at once.
    await page.getByRole('button', { name: 'Regenerate' }).click();
    await page.getByRole('dialog', { name: 'Regenerate “Backend”' }).getByRole('button', { name: 'Regenerate' }).click();
    const fresh = await readSecretOnce();
    expect(fresh).not.toBe(secret);
    await expectSecretGone(fresh);
    expect((await whoami(secret)).status).toBe(401);
    expect(await whoami(fresh)).toEqual({ status: 200, code: undefined });

    // Revoke, confirmed by typing the name.
    await page.getByRole('button', { name: 'Revoke' }).click();
    const confirm = page.getByRole('alertdialog', { name: 'Revoke “Backend”' });
    const revoke = confirm.getByRole('button', { name: 'Revoke' });
    expect(await revoke.isDisabled()).toBe(true);
    await confirm.getByRole('textbox').fill('Backend');
    await revoke.click();
    await confirm.waitFor({ state: 'detached' });
    await page.getByText('Revoked', { exact: true }).first().waitFor();
    expect(await whoami(fresh)).toEqual({ status: 401, code: 'key_revoked' });

    // Logs: every step, by Alice (the audit trail arrives through JetStream: refresh until it has).
    await page.getByRole('tab', { name: 'Logs' }).click();
    const steps = ['Created the key', 'Switched the key off', 'Switched the key on', 'Regenerated the secret', 'Revoked the key'];
    await eventually(async () => {
      await page.getByRole('button', { name: 'Refresh' }).click();
      const rows = await page.getByRole('tabpanel', { name: 'Logs' }).getByRole('row').allTextContents();
      for (const step of steps) expect(rows.some((r) => r.includes(step) && r.includes('Alice Admin'))).toBe(true);
      return true;
    }, 20_000, 500);
    await axe('key logs');

    await page.getByRole('tab', { name: 'Usage' }).click();
    const usage = page.getByRole('tabpanel', { name: 'Usage' });
    await usage.getByText(/Requests per hour|No data/).waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'usage-tab.png'), fullPage: true });
    await axe('key usage');
  });

  it('members: an admin adds, re-roles and removes members; a viewer sees no "Create key"; at 360 px nothing overflows', async () => {
    page = await openPage(360, 740);
    // A deep link before sign-in: after it, the member is where the link pointed.
    await page.goto('/dashboard/members');
    await signIn(page, 'alice@acme.test', password);
    await page.getByRole('heading', { name: 'Members' }).waitFor();
    await page.getByRole('cell', { name: 'alice@acme.test' }).waitFor();
    expect(await overflowing(page)).toEqual([]);
    await axe('members at 360 px');
    const addMember = async (name: string, email: string, role: string) => {
      await page.getByRole('button', { name: 'Add member' }).click();
      const add = page.getByRole('dialog', { name: 'Add a member' });
      await add.getByLabel('Name').fill(name);
      await add.getByLabel('Email').fill(email);
      await add.getByLabel('Password').fill('member-password');
      await add.getByLabel(role).check();
      await add.getByRole('button', { name: 'Add member' }).click();
      await add.waitFor({ state: 'detached' });
      await page.getByRole('cell', { name: email }).waitFor();
    };
    // A developer added, made a viewer, then removed.
    await addMember('Dora Developer', 'dora@acme.test', 'Developer: keys and data, not members');
    await page.getByLabel('Role of Dora Developer').selectOption('viewer');
    await eventually(async () => {
      const users = await fetch(`${gateway.url}/v1/users?pageSize=50`, { headers: { authorization: `Bearer ${acme.root_key.key}` } });
      return ((await users.json()) as { data: { email: string; role: string }[] }).data.some((u) => u.email === 'dora@acme.test' && u.role === 'viewer');
    });
    await page.getByRole('button', { name: 'Remove Dora Developer' }).click();
    await page.getByRole('alertdialog', { name: 'Remove Dora Developer?' }).getByRole('button', { name: 'Remove' }).click();
    await page.getByRole('cell', { name: 'dora@acme.test' }).waitFor({ state: 'detached' });

    await addMember('Victor Viewer', 'victor@acme.test', 'Viewer: read only');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to Keyway' }).waitFor();
    await page.goto('/dashboard/');
    await signIn(page, 'victor@acme.test', 'member-password');
    await page.getByRole('heading', { name: 'API access' }).waitFor();
    await page.getByRole('row').filter({ hasText: 'Root key' }).waitFor();
    expect(await overflowing(page)).toEqual([]);
    expect(await page.getByRole('button', { name: 'Create key' }).count()).toBe(0);
    expect(await page.getByRole('link', { name: 'Members' }).count()).toBe(0);
    await axe('API access as a viewer at 360 px');
  });

  it('an ended session shows sign-in over the page, which keeps what was typed in the open form', async () => {
    page = await openPage();
    await page.goto('/dashboard/');
    await signIn(page, 'alice@acme.test', password);
    await page.getByRole('button', { name: 'Create key' }).click();
    const form = page.getByRole('dialog', { name: 'Create an API key' });
    await form.getByLabel('Name').fill('Typed before the session ended');
    // The session ends on the server (as after 30 idle minutes): sign out with its cookie and token.
    const cookie = (await context!.cookies()).find((c) => c.name === 'kw_session')!;
    const headers = { cookie: `kw_session=${cookie.value}` };
    const { csrf_token } = (await (await fetch(`${gateway.url}/auth/v1/session`, { headers })).json()) as { csrf_token: string };
    expect((await fetch(`${gateway.url}/auth/v1/session`, { method: 'DELETE', headers: { ...headers, 'x-csrf-token': csrf_token } })).status).toBe(204);

    await form.getByRole('button', { name: 'Create key' }).click();
    const again = page.getByRole('dialog', { name: 'Your session has ended' });
    await again.waitFor();
    await again.getByLabel('Password').fill(password);
    await again.getByRole('button', { name: 'Sign in' }).click();
    await again.waitFor({ state: 'detached' });
    expect(await form.getByLabel('Name').inputValue()).toBe('Typed before the session ended');
    await form.getByRole('button', { name: 'Create key' }).click();
    await readSecretOnce();
    await page.getByRole('row').filter({ hasText: 'Typed before the session ended' }).waitFor();
    expect(acme.tenant.name).toBe('Acme');
  });

  it('a viewer changes their own password under "Your account": a wrong current one is refused, then the old one stops working and this session goes on; the cookie is kw_session, Secure, kept on http://127.0.0.1 too', async () => {
    const made = await fetch(`${gateway.url}/v1/users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${acme.root_key.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Vic Viewer', email: 'vic@acme.test', password: 'vic-first-pw', role: 'viewer' }),
    });
    expect(made.status).toBe(201);
    page = await openPage();
    await page.goto('/dashboard/');
    await signIn(page, 'vic@acme.test', 'vic-first-pw');
    await page.getByRole('link', { name: 'Your account' }).click();
    await page.getByRole('heading', { name: 'Change password' }).waitFor();
    // Chromium kept the Secure cookie from a plain-http loopback origin (a potentially trustworthy one).
    const cookies = (await context!.cookies()).map((c) => ({ name: c.name, secure: c.secure, httpOnly: c.httpOnly, sameSite: c.sameSite, path: c.path }));
    expect(cookies).toEqual([{ name: 'kw_session', secure: true, httpOnly: true, sameSite: 'Strict', path: '/' }]);
    await axe('your account');

    const change = async (current: string) => {
      await page.getByLabel('Current password').fill(current);
      await page.getByLabel('New password', { exact: true }).fill('vic-second-pw');
      await page.getByLabel('New password again').fill('vic-second-pw');
      await page.getByRole('button', { name: 'Change password' }).click();
    };
    await change('not-the-password');
    await page.getByText('The current password is not right.').waitFor();
    await change('vic-first-pw');
    await page.getByText('Your password is changed.').waitFor();
    expect(await page.getByLabel('Current password').inputValue()).toBe('');

    const signInStatus = async (pw: string) =>
      (await fetch(`${gateway.url}/auth/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'vic@acme.test', password: pw }) })).status;
    expect(await signInStatus('vic-first-pw')).toBe(401);
    expect(await signInStatus('vic-second-pw')).toBe(200);
    await page.getByRole('link', { name: 'API access' }).click();
    await page.getByRole('row').filter({ hasText: 'Root key' }).waitFor();
  });
});
