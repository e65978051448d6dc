import { IdempotentReplay, type ErrorBody } from '@keyway/contracts';
import type { INestApplication, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ServerNats, type MicroserviceOptions } from '@nestjs/microservices';
import type { NatsConnection } from '@nats-io/transport-node';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Logger } from 'nestjs-pino';
import type { BaseEnv } from './config';
import { gateOnDatabase, type DbGate, type DbGateOptions, type QueueMembership } from './db-gate';
import { natsConnectionOptions } from './nats-options';
import { initMetrics, registerMetricsRoute } from './metrics';
import { RpcErrorFilter } from './rpc';
import { startTracing } from './tracing';
import { traceDeserializer, traceRpcServer } from './tracing-rpc';
import { TurnQueue } from './turn-queue';

/** What the caller gets when the real reply could not be sent (see RpcServer.getPublisher). */
export const REPLY_TOO_LARGE: ErrorBody = {
  error: 'The answer is too large to send over the message bus',
  code: 'internal',
};

const REPLY_FAILED: ErrorBody = { error: 'Something went wrong on our side', code: 'internal' };

function serialisedBytes(value: unknown): number | undefined {
  try {
    return Buffer.byteLength(JSON.stringify(value) ?? '');
  } catch {
    return undefined;
  }
}

/**
 * A handler that answered a retried POST with its first answer returns an IdempotentReplay: the
 * reply carries that answer (as `response`, or `err` for a stored client error) and
 * `replayed: true`, which the gateway turns into `Idempotent-Replayed: true`.
 */
function replayPacket(packet: unknown): unknown {
  const p = packet as { response?: unknown; isDisposed?: boolean } | null;
  if (p === null || typeof p !== 'object' || !(p.response instanceof IdempotentReplay)) return packet;
  const { outcome } = p.response;
  return outcome.ok
    ? { response: outcome.response, replayed: true, isDisposed: p.isDisposed }
    : { err: outcome.error, replayed: true, isDisposed: p.isDisposed };
}

export interface ServiceOptions {
  name: string;
  module: Type<unknown> | import('@nestjs/common').DynamicModule;
  config: BaseEnv;
  /** How the replica watches its database to leave the queue group while it is down (db-gate.ts). */
  dbGate?: DbGateOptions;
}

/**
 * Nest's NATS server with two costs per message taken out, and no reply left unsent:
 * - it tries `JSON.parse` on every subject (patterns may be objects serialized as JSON), so each
 *   of our plain dotted subjects threw and built a SyntaxError with its stack trace; only what
 *   can be JSON is parsed here;
 * - replies go out together at the end of the event loop's turn, so the answers to one batch
 *   (say the GETs one query served) leave in one socket write rather than one or two each;
 * - a reply the connection refuses (over NATS's max_payload, 1 MiB by default) is answered with a
 *   small error at once rather than left to the caller's timeout (DESIGN, Sizes).
 */
class RpcServer extends ServerNats implements QueueMembership {
  gate: DbGate | undefined;
  private readonly replies = new TurnQueue((err) =>
    this.logger.error(`a reply could not be sent: ${err instanceof Error ? err.message : String(err)}`),
  );

  override getPublisher(...args: Parameters<ServerNats['getPublisher']>): (response: unknown) => void {
    const publish = super.getPublisher(...args);
    const subject = String((args[0] as { subject?: unknown }).subject);
    return (packet) =>
      this.replies.push(() => {
        const response = replayPacket(packet);
        try {
          publish(response);
        } catch (err) {
          // Without an answer the caller would wait out its timeout (and a gateway answer 503 to
          // a write that was saved): it gets a small error at once, and the log says what failed.
          const bytes = serialisedBytes(response);
          const max = this.maxPayload();
          const tooLarge = bytes !== undefined && max !== undefined && bytes > max;
          this.logger.error(
            tooLarge
              ? `the reply to ${subject} is ${bytes} bytes, over the connection's max_payload of ${max}: answered "${REPLY_TOO_LARGE.error}" instead`
              : `the reply to ${subject} could not be sent (${err instanceof Error ? err.message : String(err)}): answered internal instead`,
          );
          publish({ err: tooLarge ? REPLY_TOO_LARGE : REPLY_FAILED, isDisposed: true });
        }
      });
  }

  /** Out of the queue group (db-gate.ts): messages already routed here are still answered. */
  leave(): void {
    const subs = (this as unknown as { subscriptions: Array<{ drain(): Promise<void> }> }).subscriptions;
    for (const sub of subs.splice(0)) void sub.drain().catch(() => undefined);
  }

  join(): void {
    const subs = (this as unknown as { subscriptions: unknown[] }).subscriptions;
    if (subs.length > 0) return;
    let nc: NatsConnection;
    try {
      nc = this.unwrap<NatsConnection>();
    } catch {
      return; // closed
    }
    this.bindEvents(nc);
  }

  override async close(): Promise<void> {
    this.gate?.stop();
    await super.close();
  }

  private maxPayload(): number | undefined {
    try {
      return this.unwrap<NatsConnection>().info?.max_payload;
    } catch {
      return undefined; // not connected
    }
  }

  protected override getRouteFromPattern(pattern: string): string {
    const first = pattern.charCodeAt(0);
    // '{', '[' or '"': maybe JSON; anything else is a plain subject.
    return first === 0x7b || first === 0x5b || first === 0x22 ? super.getRouteFromPattern(pattern) : this.normalizePattern(pattern);
  }
}

/**
 * A service is a Nest app with two edges: NATS request-reply in the service's queue group (so
 * replicas share the load) and a small HTTP server for /health. On SIGTERM it stops taking new
 * requests, lets in-flight ones finish within SHUTDOWN_GRACE_MS, and drains NATS.
 */
export async function startService(opts: ServiceOptions): Promise<NestFastifyApplication> {
  startTracing(opts.name);
  initMetrics(opts.name);
  const app = await NestFactory.create<NestFastifyApplication>(opts.module, new FastifyAdapter(), {
    bufferLogs: true,
  });
  app.useLogger(app.get(Logger));
  // Before connectMicroservice: inheritAppConfig copies the global filters at that moment.
  app.useGlobalFilters(new RpcErrorFilter());
  const rpc = traceRpcServer(new RpcServer({
    ...natsConnectionOptions(opts.config, `${opts.name}-rpc`),
    queue: opts.name,
    gracefulShutdown: true,
    gracePeriod: Math.min(opts.config.SHUTDOWN_GRACE_MS, 2_000),
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    noAsyncTraces: true,
    deserializer: traceDeserializer(),
  }));
  app.connectMicroservice<MicroserviceOptions>({ strategy: rpc }, { inheritAppConfig: true });
  app.enableShutdownHooks();
  registerMetricsRoute(app.getHttpAdapter().getInstance());
  await app.startAllMicroservices();
  rpc.gate = gateOnDatabase(app, rpc, opts.dbGate);
  await app.listen({ port: opts.config.HEALTH_PORT ?? 0, host: opts.config.HOST });
  return app;
}

export function httpAddress(app: INestApplication): string {
  const server = app.getHttpServer() as { address(): { port: number; address: string } | string | null };
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('server is not listening on TCP');
  return `http://${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}`;
}
