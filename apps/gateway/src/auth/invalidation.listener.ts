import {
  GATEWAY_HEARTBEAT,
  GATEWAY_INVALIDATE,
  Invalidation,
  KEY_LIFECYCLE_SUBJECTS,
  lookupIdOfPrefix,
  MEMBER_EVENT_SUBJECTS,
  parseKeyEvent,
  parseMemberEvent,
  type GatewayHeartbeat,
  type KeyEvent,
} from '@keyway/contracts';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { KeyVerifier } from './key-verifier';
import type { SessionAuth } from './session-auth';

/** A look-up id as identity sends them: anything else in an invalidation is ignored. */
const LOOKUP_ID = /^[a-z0-9]{8}$/;

function json(data: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(data).toString('utf8'));
  } catch {
    return undefined;
  }
}

/** A key event read through the contract (upcast and validated), or undefined if it is not one. */
export function keyEvent(data: Uint8Array): KeyEvent | undefined {
  try {
    return parseKeyEvent(json(data));
  } catch {
    return undefined;
  }
}

/**
 * The gateway's side of revocation at every replica:
 *  - GATEWAY_INVALIDATE (core NATS, no queue group: every gateway gets each message): drop the
 *    look-up ids, then acknowledge, so identity can answer the revoke knowing no gateway still
 *    holds the key;
 *  - key lifecycle events (each subject of `KEYWAY`, which core subscribers see as JetStream
 *    stores them; never `keyway.keys.used`, the bulk of the traffic, which changes no key): a
 *    second path that drops the key's prefixes even if the direct message was missed;
 *  - a heartbeat on GATEWAY_HEARTBEAT, so identity knows which gateways to wait for. The first one
 *    goes out only after both subscriptions are registered with the server.
 */
export class InvalidationListener {
  private subs: Subscription[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly enc = new TextEncoder();

  constructor(
    private readonly nc: NatsConnection,
    private readonly verifier: KeyVerifier,
    private readonly gatewayId: string,
    private readonly heartbeatEveryMs: number,
    private readonly sessions?: SessionAuth,
  ) {}

  async start(): Promise<void> {
    const ack = this.enc.encode(JSON.stringify({ gateway_id: this.gatewayId }));
    this.subs.push(
      this.nc.subscribe(GATEWAY_INVALIDATE, {
        callback: (err, msg) => {
          if (err) return;
          const parsed = Invalidation.safeParse(json(msg.data));
          // A message we cannot read could still be about a key we hold: the safe answer is to
          // forget everything rather than acknowledge something we did not do.
          if (parsed.success) {
            const { lookup_ids, tenant_id, member_id } = parsed.data;
            this.verifier.invalidate(lookup_ids.filter((id) => LOOKUP_ID.test(id)), tenant_id === undefined ? {} : { tenantId: tenant_id });
            if (member_id !== undefined) this.sessions?.dropMember(member_id);
          } else {
            this.verifier.clear();
            this.sessions?.clear();
          }
          if (msg.reply) msg.respond(ack);
        },
      }),
    );
    // Member events (a second path, as for keys): a removed, re-roled or changed member's
    // sessions are dropped. Unreadable: every session is, rather than trusting what it seems to say.
    for (const subject of MEMBER_EVENT_SUBJECTS) {
      this.subs.push(
        this.nc.subscribe(subject, {
          callback: (err, msg) => {
            if (err || this.sessions === undefined) return;
            let memberId: string | undefined;
            try {
              const e = parseMemberEvent(json(msg.data));
              if (e.type === 'signed_in' || e.type === 'sign_in_failed' || e.type === 'created') return;
              memberId = e.member_id;
            } catch {
              memberId = undefined;
            }
            if (memberId === undefined) this.sessions.clear();
            else this.sessions.dropMember(memberId);
          },
        }),
      );
    }
    // One subscription per key lifecycle subject, so `used` events never reach this callback at all.
    for (const subject of KEY_LIFECYCLE_SUBJECTS) {
      this.subs.push(
        this.nc.subscribe(subject, {
          callback: (err, msg) => {
            if (err) return;
            const event = keyEvent(msg.data);
            // Unreadable (a schema this gateway does not know yet, or a bad publisher): it may be
            // about a key we hold, so forget every key rather than trust what it seems to say.
            if (!event) return this.verifier.clear();
            // The event names the current prefix, and the older ones a rotation or its completion
            // ended; every other secret of the key still inside a grace is found by the key id.
            const ids = [event.prefix, ...(event.type === 'rotated' ? [event.data.previous_prefix] : []), ...(event.type === 'rotation_completed' ? event.data.ended_prefixes : [])]
              .map(lookupIdOfPrefix)
              .filter((id): id is string => id !== undefined);
            this.verifier.invalidate(ids, { keyId: event.key_id });
          },
        }),
      );
    }
    await this.nc.flush();
    this.beat();
    this.timer = setInterval(() => this.beat(), this.heartbeatEveryMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
  }

  private beat(): void {
    if (this.nc.isClosed()) return;
    const hb: GatewayHeartbeat = { gateway_id: this.gatewayId, at: new Date().toISOString() };
    try {
      this.nc.publish(GATEWAY_HEARTBEAT, this.enc.encode(JSON.stringify(hb)));
    } catch {
      // Disconnected: the next beat after reconnecting announces us again.
    }
  }
}
