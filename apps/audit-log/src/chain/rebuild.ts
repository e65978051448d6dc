import { serviceDatabaseUrl } from '@keyway/database';
import { jetStreamContext } from '@keyway/messaging';
import { NATS_CONNECTION, natsConnectionOptions } from '@keyway/runtime';
import { serviceModules } from '@keyway/service';
import { Module, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { AuditEventEntity } from '../audit/audit-event.entity';
import { AuditModule } from '../audit/audit.module';
import { SERVICE, type AuditLogConfig } from '../config';
import { migrations } from '../migrations';
import { ChainService } from './chain.service';

export interface RebuildResult {
  durable: string;
  tenants: number;
  entries: number;
  /** Tenants whose rebuilt chain does not match their published head, with the reason. */
  mismatches: Array<{ tenant_id: string; reason: string }>;
}

/** The trail's part of the service, and nothing that answers requests or reads other streams. */
@Module({})
class RebuildModule {
  static forRoot(config: AuditLogConfig): DynamicModule {
    return {
      module: RebuildModule,
      imports: [...serviceModules({ service: SERVICE, config, entities: [AuditEventEntity], migrations, poolSize: config.AUDIT_WRITERS + 4 }), AuditModule.forRoot(config)],
    };
  }
}

async function assertEmpty(databaseUrl: string): Promise<void> {
  const pg = new Client({ connectionString: serviceDatabaseUrl(databaseUrl, SERVICE) });
  try {
    await pg.connect();
  } catch (err) {
    if ((err as { code?: string }).code === '3D000') return; // no database yet: created empty
    throw err;
  }
  try {
    const found = await pg.query<{ t: boolean }>(`SELECT to_regclass('audit_events') IS NOT NULL AS t`);
    if (!found.rows[0]?.t) return;
    const rows = await pg.query<{ n: string }>('SELECT count(*) AS n FROM audit_events');
    if (Number(rows.rows[0]?.n) > 0) {
      throw new Error(`the audit trail in ${serviceDatabaseUrl(databaseUrl, SERVICE).replace(/\/\/[^@]*@/, '//')} is not empty: rebuild into an empty database`);
    }
  } finally {
    await pg.end();
  }
}

/**
 * Rebuilds the audit trail from the KEYWAY stream into an empty database, through the service's
 * own ingest and linker (so a rebuild is what the service would have written): a durable consumer
 * of its own (`<AUDIT_DURABLE>-rebuild-<time>`, from the stream's first message, deleted at the
 * end) reads the whole stream; when it has nothing pending and every stored row is linked, each
 * tenant's chain is verified against its published head (never republished: the rebuild only
 * compares). The chain depends on the stream alone, so entries, links and heads come out the same.
 */
export async function rebuildTrail(base: AuditLogConfig, opts: { timeoutMs?: number } = {}): Promise<RebuildResult> {
  await assertEmpty(base.DATABASE_URL);
  const durable = `${base.AUDIT_DURABLE}-rebuild-${Date.now().toString(36)}`;
  const config: AuditLogConfig = { ...base, AUDIT_DURABLE: durable, AUDIT_HEADS_PUBLISH: 'off', AUDIT_CHAIN: 'on', AUDIT_LINK_IDLE_MS: Math.min(base.AUDIT_LINK_IDLE_MS, 100) };
  const app = await NestFactory.createApplicationContext(RebuildModule.forRoot(config), { logger: ['error', 'warn'] });
  const { jsm } = await jetStreamContext(app.get<NatsConnection>(NATS_CONNECTION));
  try {
    await app.init();
    const ds = app.get(DataSource);
    const deadline = Date.now() + (opts.timeoutMs ?? 3_600_000);
    for (;;) {
      const info = await jsm.consumers.info(config.KEYWAY_STREAM, durable);
      const unlinked = await ds.query<Array<{ n: string }>>('SELECT count(*) AS n FROM audit_events WHERE chain_pos IS NULL');
      if (info.num_pending === 0 && info.num_ack_pending === 0 && Number(unlinked[0]?.n) === 0) break;
      if (Date.now() > deadline) throw new Error(`the rebuild did not finish in time (${info.num_pending} pending, ${unlinked[0]?.n} unlinked)`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const chain = app.get(ChainService);
    const tenants = await ds.query<Array<{ tenant_id: string; position: string }>>('SELECT tenant_id, position FROM audit_heads WHERE position > 0 ORDER BY tenant_id');
    const mismatches: RebuildResult['mismatches'] = [];
    for (const t of tenants) {
      const r = await chain.verify(t.tenant_id);
      if (!r.verification.verified) mismatches.push({ tenant_id: t.tenant_id, reason: r.verification.first_bad.reason });
    }
    return { durable, tenants: tenants.length, entries: tenants.reduce((n, t) => n + Number(t.position), 0), mismatches };
  } finally {
    await app.close();
    // The app's connection is drained by now (and deleting earlier would let the running consumer
    // create it again): a connection of its own.
    const nc = await connect(natsConnectionOptions(config, 'audit-log-rebuild'));
    try {
      await (await jetStreamContext(nc)).jsm.consumers.delete(config.KEYWAY_STREAM, durable);
    } finally {
      await nc.close();
    }
  }
}
