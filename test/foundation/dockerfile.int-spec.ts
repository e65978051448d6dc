import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';

/**
 * No Docker engine runs on our machines, so the Dockerfile is checked by what it says: the images
 * run on the active Node LTS while package.json still admits the machines' Node 20, and the
 * gateway image puts the dashboard's build where dashboard.routes.ts looks for it.
 */
const ROOT = join(__dirname, '..', '..');
const read = (...p: string[]) => readFileSync(join(ROOT, ...p), 'utf8');

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');

  it('runs on Node 24 or later, and the code still declares Node 20.19', () => {
    const image = /^ARG NODE_IMAGE=node:(\d+)/m.exec(dockerfile);
    expect(Number(image?.[1])).toBeGreaterThanOrEqual(24);
    expect((JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node).toBe('>=20.19');
  });

  it('builds the dashboard into the gateway image where the gateway serves it from', () => {
    expect(dockerfile).toMatch(/turbo prune @keyway\/gateway @keyway\/dashboard --docker/);
    expect(dockerfile).toMatch(/--filter=@keyway\/dashboard\.\.\./);
    // dashboard.routes.ts resolves its directory from dist/http of the built gateway.
    const routes = read('apps', 'gateway', 'src', 'http', 'dashboard.routes.ts');
    const relative = /DEFAULT_DASHBOARD_DIR = resolve\(__dirname, '([^']+)'\)/.exec(routes)?.[1];
    expect(relative).toBeDefined();
    const workdir = /^WORKDIR (\/app\/apps\/)\$\{APP\}$/m.exec(dockerfile)?.[1];
    const served = posix.resolve(`${workdir}gateway/dist/http`, relative!);
    expect(served).toBe('/app/apps/dashboard/dist');
    // The build stage stages apps/dashboard/dist under /out/apps, which the runtime copies to /app/apps.
    expect(dockerfile).toMatch(/cp -a apps\/dashboard\/dist \/out\/apps\/dashboard\/dist/);
    expect(dockerfile).toMatch(/^COPY --from=build --chown=node:node \/out\/apps \.\/apps$/m);
    // The dashboard's sources reach the build context (only built output is ignored).
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim());
    expect(ignored).not.toContain('apps/dashboard');
    expect(ignored).toContain('**/dist');
  });
});
