import { randomBytes } from 'node:crypto';
import { ServiceProcess, startInfra, type TestInfra } from '@keyway/testing';

const SERVICES = ['identity', 'contacts', 'journeys', 'audit-log'] as const;

export interface Platform {
  infra: TestInfra;
  gateway: ServiceProcess;
  services: ServiceProcess[];
  adminToken: string;
  url: string;
  /** The gateway's operator listener (ADMIN_PORT): `/admin/v1` answers here, 404 on `url`. */
  adminUrl: string;
  /** Everything every process has printed so far. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * The whole platform as an operator runs it: each service a built child process with its own
 * database, all on one private nats-server, the gateway in front.
 */
export async function startPlatform(
  label: string,
  env: Record<string, string> = {},
  opts: {
    /** A subset of the services (identity first, always). */
    services?: ReadonlyArray<(typeof SERVICES)[number]>;
    /** Start them one after another, not all at once (kinder to 2 loaded cores). */
    oneByOne?: boolean;
  } = {},
): Promise<Platform> {
  const infra = await startInfra(label);
  const adminToken = `kwadm_${randomBytes(24).toString('hex')}`;
  const common = { ...infra.env, ...env };
  const services = (opts.services ?? SERVICES).map((app) => new ServiceProcess(app, common));
  const gateway = new ServiceProcess('gateway', { ...common, KEYWAY_ADMIN_TOKEN: adminToken });
  const all = [...services, gateway];
  try {
    // identity first: it ensures the stream the audit log consumes.
    await services[0]!.start();
    if (opts.oneByOne) for (const s of [...services.slice(1), gateway]) await s.start();
    else await Promise.all([...services.slice(1), gateway].map((s) => s.start()));
  } catch (err) {
    await Promise.all(all.map((s) => s.kill()));
    await infra.stop();
    throw err;
  }
  return {
    infra,
    gateway,
    services,
    adminToken,
    url: gateway.url,
    adminUrl: gateway.adminUrl,
    output: () => all.map((s) => s.output).join('\n'),
    async stop() {
      await Promise.all(all.map((s) => s.kill('SIGTERM')));
      await infra.stop();
    },
  };
}

export interface Answer<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}

export async function request<T = Record<string, unknown>>(
  base: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; rawBody?: string; contentType?: string; headers?: Record<string, string> } = {},
): Promise<Answer<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.rawBody !== undefined) body = opts.rawBody;
  else if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined) headers['content-type'] = opts.contentType ?? 'application/json';
  const res = await fetch(`${base}${path}`, { method, headers, body });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T, headers: res.headers };
}
