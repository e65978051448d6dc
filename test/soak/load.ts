import { now, type SoakClient } from './client';

/** What a key command is recorded as, by the lifecycle event it must have left in the store. */
export type KeyEventType = 'created' | 'updated' | 'rotated' | 'revoked';

/** One key command the load sent (all its attempts together), and whether it answered 2xx. */
export interface KeyCommand {
  keyName: string;
  keyId: string | undefined;
  event: KeyEventType;
  ok: boolean;
}

export interface Revoked {
  keyId: string;
  /** Every secret the key was ever given (a rotation with a grace keeps the older one working). */
  secrets: string[];
  answeredAt: number;
}

/** A request with a revoked key's secret, sent after its revoke had answered, that was accepted. */
interface Acceptance {
  keyId: string;
  gateway: string;
  sentAt: number;
  revokeAnsweredAt: number;
  status: number;
}

export interface LoadRecord {
  commands: KeyCommand[];
  revoked: Revoked[];
  acceptances: Acceptance[];
  /** Probes of revoked keys: how many were sent after the revoke answered. */
  probes: number;
}

const HIGH = { burst_per_second: 1_000_000, per_minute: 1_000_000, per_hour: 1_000_000, daily: 1_000_000 };
/** The small key the limit check hammers across both gateways. */
export const TINY_LIMIT = { burst_per_second: 5, per_minute: 40, per_hour: 1_000_000, daily: 1_000_000 } as const;

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ok = (status: number | undefined): boolean => status !== undefined && status >= 200 && status < 300;

/**
 * The steady mixed load: key lifecycles (create, re-scope, rotate, revoke, then probes of the
 * revoked secrets at both gateways), reads (whoami, key list, contact list), contact writes, and a
 * small-limit key hammered across both gateways. Each worker paces itself: the machine has two
 * cores and ten processes to run.
 */
export class Load {
  readonly record: LoadRecord = { commands: [], revoked: [], acceptances: [], probes: 0 };
  private running = true;
  private keySeq = 0;
  private workers: Array<Promise<void>> = [];

  constructor(
    private readonly client: SoakClient,
    /** A key with every scope the load needs and limits that never bind. */
    private readonly token: string,
    private readonly limitedToken: string,
    private readonly random: () => number,
  ) {}

  static readonly keyBody = (name: string, scopes: string[] = ['contacts:read']) => ({ name, scopes, rate_limit: HIGH });

  start(): void {
    this.workers = [
      this.loop(() => this.keyLifecycle(0)),
      this.loop(() => this.keyLifecycle(1)),
      this.loop(() => this.read(), 60),
      this.loop(() => this.read(), 60),
      this.loop(() => this.writeContact(), 80),
      this.loop(() => this.hammerLimited(), 40),
      this.loop(() => this.probeRevoked(), 250),
    ];
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.workers);
  }

  private async loop(step: () => Promise<void>, pauseMs = 0): Promise<void> {
    while (this.running) {
      await step();
      if (pauseMs > 0) await pause(pauseMs * (0.5 + this.random()));
    }
  }

  private async command(keyName: string, keyId: string | undefined, event: KeyEventType, method: string, path: string, body: unknown, prefer: number) {
    const answer = await this.client.call(`key.${event}`, method, path, { token: this.token, body, prefer });
    this.record.commands.push({ keyName, keyId, event, ok: ok(answer?.status) });
    return answer;
  }

  /** whoami with each secret at each gateway, so both caches hold the key before it changes. */
  private async warm(secrets: string[]): Promise<void> {
    await Promise.all(secrets.flatMap((s) => [0, 1].map((g) => this.client.call('key.whoami', 'GET', '/v1/whoami', { token: s, prefer: g, once: true }))));
  }

  private async keyLifecycle(prefer: number): Promise<void> {
    const name = `soak-${prefer}-${++this.keySeq}`;
    const created = await this.command(name, undefined, 'created', 'POST', '/v1/keys', Load.keyBody(name), prefer);
    if (!ok(created?.status)) return;
    const id = created!.body!.id as string;
    // A create replayed after a lost answer carries no secret (shown once): the key still lives.
    // `secrets`: every secret it was given (all probed after the revoke); `live`: those that open
    // it now (a rotation without grace ends the older ones, one with a grace keeps them).
    const secrets = typeof created!.body!.key === 'string' ? [created!.body!.key] : [];
    let live = [...secrets];
    await this.warm(live);
    for (let step = 0; step < 3 && this.running; step++) {
      const r = this.random();
      if (r < 0.4) {
        const scopes = this.random() < 0.5 ? ['contacts:read'] : ['contacts:read', 'journeys:read'];
        await this.command(name, id, 'updated', 'PATCH', `/v1/keys/${id}`, { scopes }, prefer);
      } else if (r < 0.75) {
        // Half the rotations keep the older secret working for a minute: the revoke must end both.
        const grace = this.random() < 0.5 ? 0 : 60;
        const rotated = await this.command(name, id, 'rotated', 'POST', `/v1/keys/${id}/rotate`, { grace_period_seconds: grace }, prefer);
        if (ok(rotated?.status)) {
          const key = typeof rotated!.body!.key === 'string' ? [rotated!.body!.key] : [];
          secrets.push(...key);
          live = grace > 0 ? [...live, ...key] : key;
        }
      } else {
        await this.client.call('key.get', 'GET', `/v1/keys/${id}`, { token: this.token, prefer });
      }
      await this.warm(live);
      await pause(50 + 100 * this.random());
    }
    const revoked = await this.command(name, id, 'revoked', 'POST', `/v1/keys/${id}/revoke`, { reason: 'soak' }, prefer);
    if (!ok(revoked?.status)) return;
    const entry: Revoked = { keyId: id, secrets, answeredAt: now() };
    this.record.revoked.push(entry);
    // Right after the answer, at both gateways: the moment a stale cache would show.
    await this.probe(entry);
  }

  private async probe(entry: Revoked): Promise<void> {
    await Promise.all(
      entry.secrets.flatMap((secret) =>
        [0, 1].map(async (g) => {
          const sentAt = now();
          const answer = await this.client.call('probe.revoked', 'GET', '/v1/whoami', { token: secret, prefer: g, once: true });
          this.record.probes++;
          if (answer !== undefined && ok(answer.status)) {
            this.record.acceptances.push({ keyId: entry.keyId, gateway: answer.gateway, sentAt, revokeAnsweredAt: entry.answeredAt, status: answer.status });
          }
        }),
      ),
    );
  }

  /** Throughout the run: the latest revoked keys and one older one, again and again. */
  private async probeRevoked(): Promise<void> {
    const list = this.record.revoked;
    if (list.length === 0) return;
    const picks = new Set(list.slice(-4));
    picks.add(list[Math.floor(this.random() * list.length)]!);
    await Promise.all([...picks].map((e) => this.probe(e)));
  }

  private async read(): Promise<void> {
    const r = this.random();
    if (r < 0.4) await this.client.call('read.whoami', 'GET', '/v1/whoami', { token: this.token });
    else if (r < 0.7) await this.client.call('read.keys', 'GET', '/v1/keys?pageSize=10', { token: this.token });
    else await this.client.call('read.contacts', 'GET', '/v1/contacts?pageSize=10', { token: this.token });
  }

  private contactSeq = 0;

  private async writeContact(): Promise<void> {
    const n = ++this.contactSeq;
    const created = await this.client.call('write.contact.create', 'POST', '/v1/contacts', {
      token: this.token,
      body: { type: 'lead', name: `Soak ${n}`, email: `soak${n}@example.com` },
    });
    if (!ok(created?.status)) return;
    await this.client.call('write.contact.update', 'PATCH', `/v1/contacts/${created!.body!.id as string}`, { token: this.token, body: { name: `Soak ${n} updated` } });
  }

  /** The tiny-limit key, alternately at each gateway, no retries: every answer counts. */
  private turn = 0;

  private async hammerLimited(): Promise<void> {
    await this.client.call('limited', 'GET', '/v1/whoami', { token: this.limitedToken, prefer: this.turn++ % 2, once: true });
  }
}
