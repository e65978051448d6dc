import {
  ALL_SCOPES,
  effectiveRateLimit,
  GATEWAY_INVALIDATE,
  hashKey,
  InvalidationAck,
  mintKey,
  Rpc,
  ROUTES,
  type RateLimitOverride,
  type Scope,
  type VerificationRecord,
} from '@keyway/contracts';
import { loadConfig } from '@keyway/runtime';
import type { TestInfra } from '@keyway/testing';
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { createGateway } from '../src/app';
import { GatewayEnv, type GatewayConfig } from '../src/config';

export interface MintedKey {
  key: string;
  prefix: string;
  lookupId: string;
  record: VerificationRecord;
}

/** The fake tenant's ceiling: high, so a test's own limits are what bind. */
const FAKE_CEILING = { burst_per_second: 1_000_000_000, per_minute: 1_000_000_000, per_hour: 1_000_000_000, daily: 1_000_000_000 };

type Reply = { response: unknown } | { err: { error: string; code: string } } | 'silent';

/**
 * Stand-ins for identity and the resource services on the test's private nats-server: a verify
 * handler answering records minted here, and every routed subject answering an echo of what it
 * was sent (so tests can check the ctx the gateway built). Only what is named here is faked.
 */
export class FakeServices {
  readonly records = new Map<string, VerificationRecord>();
  verifyCalls = 0;
  /** Per subject: an answer other than the echo; 'silent' never answers (a timeout). */
  readonly overrides = new Map<string, Reply>();
  /** Delay before answering a verify (for race tests). */
  verifyDelayMs = 0;
  private readonly subs = new Map<string, { unsubscribe(): void }>();

  private constructor(readonly nc: NatsConnection) {}

  static async start(natsUrl: string, opts: { skip?: string[] } = {}): Promise<FakeServices> {
    const nc = await connect({ servers: natsUrl, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const fake = new FakeServices(nc);
    const subjects = new Set<string>([Rpc.keysVerify, Rpc.tenantsCreate, Rpc.tenantsList, Rpc.tenantsUpdate, Rpc.tenantsRootKey, Rpc.adminKeysFind, Rpc.adminKeysRevoke, Rpc.adminRelayStatus, Rpc.tenantsGet, ...ROUTES.flatMap((r) => [r.subject, ...(r.alsoSubjects ?? [])])]);
    for (const s of opts.skip ?? []) subjects.delete(s);
    for (const subject of subjects) {
      fake.subs.set(subject, nc.subscribe(subject, { callback: (err, msg) => (err ? undefined : void fake.answer(subject, msg)) }));
    }
    await nc.flush();
    return fake;
  }

  mint(scopes: readonly Scope[] = ALL_SCOPES, over: Partial<VerificationRecord> & { override?: RateLimitOverride } = {}): MintedKey {
    const { override, ...rest } = over;
    const m = mintKey(rest.environment ?? 'live');
    const record: VerificationRecord = {
      key_id: `key_${m.lookupId}aaaaaaaaaaaa`,
      tenant_id: 'ten_fake000000000000001',
      prefix: m.prefix,
      environment: 'live',
      scopes: [...scopes],
      status: 'active',
      expires_at: null,
      valid_until: null,
      rate_limit: effectiveRateLimit({ burst_per_second: 10_000, per_minute: 100_000, per_hour: 1_000_000, daily: 10_000_000, ...override }, FAKE_CEILING),
      hash: hashKey(m.key),
      ...rest,
      siblings: rest.siblings ?? [],
    };
    this.records.set(m.lookupId, record);
    return { ...m, record };
  }

  /** What identity does on revoke/disable/rotate: ask every gateway, gather the acks. */
  async invalidate(lookupIds: string[], keyId: string, expected: number, maxWait = 2_000): Promise<string[]> {
    const acks: string[] = [];
    const replies = await this.nc.requestMany(GATEWAY_INVALIDATE, JSON.stringify({ lookup_ids: lookupIds, key_id: keyId }), {
      strategy: 'count',
      maxMessages: expected,
      maxWait,
    });
    for await (const r of replies) {
      const ack = InvalidationAck.safeParse(r.json());
      if (ack.success) acks.push(ack.data.gateway_id);
    }
    return acks;
  }

  /** Stops answering `subject` altogether: callers get "no responders". */
  async unsubscribe(subject: string): Promise<void> {
    this.subs.get(subject)?.unsubscribe();
    this.subs.delete(subject);
    await this.nc.flush();
  }

  async stop(): Promise<void> {
    for (const s of this.subs.values()) s.unsubscribe();
    await this.nc.close();
  }

  private async answer(subject: string, msg: Msg): Promise<void> {
    const req = msg.json<{ pattern: string; data: unknown; id: string }>();
    const override = this.overrides.get(subject);
    if (override === 'silent') return;
    let reply: Reply;
    if (override) reply = override;
    else if (subject === Rpc.keysVerify) {
      this.verifyCalls++;
      const lookupId = (req.data as { lookup_id: string }).lookup_id;
      const record = this.records.get(lookupId) ?? null;
      if (this.verifyDelayMs > 0) await new Promise((r) => setTimeout(r, this.verifyDelayMs));
      reply = { response: { record: record && structuredClone(record) } };
    } else {
      const echo = { echo: { subject, pattern: req.pattern, data: req.data } };
      // An upsert's service answers `{status, body}` (the route's statusInReply).
      reply = { response: ROUTES.some((r) => r.statusInReply && r.subject === subject) ? { status: 201, body: echo } : echo };
    }
    msg.respond(JSON.stringify({ ...reply, isDisposed: true }));
  }
}

export interface RunningGateway {
  app: NestFastifyApplication;
  url: string;
  /** The operator listener (ADMIN_PORT): `/admin/v1`, `/metrics`. */
  adminUrl: string;
  config: GatewayConfig;
  close(): Promise<void>;
}

export async function startGateway(infra: TestInfra, env: Record<string, string> = {}): Promise<RunningGateway> {
  const config = loadConfig(GatewayEnv, {
    ...infra.env,
    REDIS_URL: '',
    KEYWAY_ADMIN_TOKEN: 'operator-token-for-tests-0123456789',
    RPC_TIMEOUT_MS: '400',
    ...env,
  });
  const { app, admin } = await createGateway(config, { docs: false });
  await admin.listen({ port: 0, host: '127.0.0.1' });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.getHttpServer().address();
  const adminAddr = admin.server.address();
  if (addr === null || typeof addr === 'string' || adminAddr === null || typeof adminAddr === 'string') throw new Error('not listening');
  return { app, url: `http://127.0.0.1:${addr.port}`, adminUrl: `http://127.0.0.1:${adminAddr.port}`, config, close: () => app.close() };
}

export interface HttpResult {
  status: number;
  headers: Headers;
  body: unknown;
  text: string;
}

export async function http(
  base: string,
  method: string,
  path: string,
  opts: { key?: string; headers?: Record<string, string>; body?: unknown; rawBody?: string | Buffer } = {},
): Promise<HttpResult> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.key !== undefined) headers.authorization = `Bearer ${opts.key}`;
  let body: string | Buffer | undefined;
  if (opts.rawBody !== undefined) body = opts.rawBody;
  else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(`${base}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}
