import { Rpc } from '@keyway/contracts';
import { REPO_ROOT, ServiceProcess, startInfra, type TestInfra } from '@keyway/testing';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

/**
 * Tracing's two states, in real processes (the built packages, as they run in production):
 * without OTEL_EXPORTER_OTLP_ENDPOINT the OpenTelemetry SDK is never loaded (its context manager
 * would turn on promise hooks for the whole process); with it, a service exports its handler's
 * span and its Postgres calls under the caller's traceparent to the OTLP endpoint.
 */
const RUNTIME = join(REPO_ROOT, 'packages/runtime/dist/index.js');
const SDK_MODULES = /@opentelemetry[\\/](sdk-node|sdk-trace-base|sdk-trace-node|context-async-hooks|instrumentation-pg)[\\/]/;

/** Which SDK modules a process that loads @keyway/runtime and calls startTracing has required. */
function sdkModulesLoaded(env: Record<string, string>): number {
  const script = `
    const r = require(${JSON.stringify(RUNTIME)});
    r.startTracing('probe');
    const loaded = Object.keys(require.cache).filter((k) => ${SDK_MODULES}.test(k)).length;
    process.stdout.write(JSON.stringify({ loaded }));
    process.exit(0);
  `;
  const out = execFileSync(process.execPath, ['-e', script], { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8' });
  return (JSON.parse(out) as { loaded: number }).loaded;
}

describe('tracing off: the SDK is not even loaded', () => {
  it('without OTEL_EXPORTER_OTLP_ENDPOINT (or with it empty) no OpenTelemetry SDK module is required', () => {
    expect(sdkModulesLoaded({})).toBe(0);
    expect(sdkModulesLoaded({ OTEL_EXPORTER_OTLP_ENDPOINT: '' })).toBe(0);
  });

  it('with it set, the SDK is loaded (the check above can see it)', () => {
    expect(sdkModulesLoaded({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' })).toBeGreaterThan(0);
  });
});

interface Attr {
  key: string;
  value: { stringValue?: string };
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes?: Attr[];
}

describe('tracing on: a service exports its handler and Postgres spans under the caller', () => {
  const TRACE_ID = '5b8efff798038103d269b633813fc60c';
  const PARENT = 'eee19b7ec3c1b174';
  let infra: TestInfra;
  let contacts: ServiceProcess;
  let receiver: Server;
  let nc: NatsConnection;
  const posts: string[] = [];
  const spans: Array<{ service: string; span: OtlpSpan }> = [];

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        posts.push(`${req.method} ${req.url}`);
        try {
          const doc = JSON.parse(body) as { resourceSpans?: Array<{ resource?: { attributes?: Attr[] }; scopeSpans?: Array<{ spans?: OtlpSpan[] }> }> };
          for (const rs of doc.resourceSpans ?? []) {
            const service = rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue ?? '?';
            for (const ss of rs.scopeSpans ?? []) for (const span of ss.spans ?? []) spans.push({ service, span });
          }
        } catch {
          // not JSON: the POST is recorded all the same
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    infra = await startInfra('trace_on');
    const endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    contacts = new ServiceProcess('contacts', { ...infra.env, OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: '100', RELAY_ENABLED: 'false' });
    await contacts.start();
    nc = await connect({ servers: infra.natsUrl });
  }, 90_000);
  afterAll(async () => {
    await nc?.close();
    await contacts?.kill('SIGTERM');
    await infra?.stop();
    await new Promise((r) => receiver?.close(r));
  });

  it('POST /v1/traces arrives with the server span (child of the traceparent) and a pg span under it', async () => {
    const h = headers();
    h.set('traceparent', `00-${TRACE_ID}-${PARENT}-01`);
    const data = { tenant_id: 'ten_tracing', id: 'ct_tracing', environment: 'live' };
    const m = await nc.request(Rpc.contactsExists, JSON.stringify({ pattern: Rpc.contactsExists, data, id: '1' }), { timeout: 10_000, headers: h });
    expect(m.json()).toMatchObject({ response: { exists: false } });

    const deadline = Date.now() + 20_000;
    const ours = () => spans.filter((s) => s.span.traceId === TRACE_ID);
    while (Date.now() < deadline && !ours().some((s) => s.span.attributes?.some((a) => a.key.startsWith('db.')))) await new Promise((r) => setTimeout(r, 100));
    expect(posts).toContain('POST /v1/traces');
    const server = ours().find((s) => s.span.name === Rpc.contactsExists);
    expect(server).toMatchObject({ service: 'contacts', span: { parentSpanId: PARENT } });
    const db = ours().filter((s) => s.span.attributes?.some((a) => a.key.startsWith('db.')));
    expect(db.length).toBeGreaterThan(0);
    expect(db.every((s) => s.span.parentSpanId === server!.span.spanId)).toBe(true);
  }, 40_000);
});
