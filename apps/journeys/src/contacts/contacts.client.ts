import { ContactExistsReply, ContactExistsRequest, Rpc } from '@keyway/contracts';
import { continueTrace, formatTraceparent, InjectNats, otel, rpcMetrics, TRACEPARENT } from '@keyway/runtime';
import { headers, TimeoutError, type NatsConnection } from '@nats-io/transport-node';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Caller } from '../caller';
import { JOURNEYS_CONFIG, type JourneysConfig } from '../config';
import { ContactCheckError } from './contacts.errors';

/**
 * Asks the contacts service whether a contact exists in a tenant: the one service-to-service call
 * journeys makes (SERVICE_CALLS in contracts), since it may not read contacts' tables. Bounded
 * by CONTACTS_TIMEOUT_MS; a contacts service that is down, silent or broken makes the write
 * `unavailable` (503, worth a retry), never `internal`.
 */
@Injectable()
export class ContactsClient {
  private readonly logger = new Logger(ContactsClient.name);
  private seq = 0;

  constructor(
    @InjectNats() private readonly nc: NatsConnection,
    @Inject(JOURNEYS_CONFIG) private readonly config: JourneysConfig,
  ) {}

  /**
   * `invalid_request` on `contact_id`, as contacts answers an unknown `account_id`. Asked in the
   * caller's mode: a contact of the other mode does not exist for it.
   */
  async assertContact(caller: Caller, contactId: string): Promise<void> {
    if (!(await this.exists(caller, contactId))) throw ContactCheckError.unknownContact(contactId);
  }

  private async exists(caller: Caller, contactId: string): Promise<boolean> {
    const data: ContactExistsRequest = ContactExistsRequest.parse({ tenant_id: caller.tenantId, id: contactId, environment: caller.mode });
    // Nest's NATS wire format, which the contacts service's handler speaks.
    const payload = JSON.stringify({ pattern: Rpc.contactsExists, data, id: `journeys.${++this.seq}` });
    // The caller's trace goes on to contacts (a client span between them when spans are exported).
    const span = caller.trace ? otel()?.clientSpan(Rpc.contactsExists, caller.trace, { 'messaging.system': 'nats' }) : undefined;
    const h = headers();
    h.set(TRACEPARENT, formatTraceparent(span?.ids ?? continueTrace(caller.trace)));
    const metrics = rpcMetrics(Rpc.contactsExists);
    const started = performance.now();
    let raw: { response?: unknown; err?: unknown };
    try {
      const msg = await this.nc.request(Rpc.contactsExists, payload, { timeout: this.config.CONTACTS_TIMEOUT_MS, headers: h });
      metrics.duration.observe((performance.now() - started) / 1000);
      span?.end();
      raw = msg.json();
    } catch (err) {
      if (err instanceof TimeoutError) metrics.timeouts.n += 1;
      span?.end(err instanceof Error ? err.name : 'error');
      // No responders (contacts is down), a timeout, a closed connection or an unreadable reply.
      throw this.unavailable(caller, err instanceof Error ? err.message : String(err));
    }
    if (raw.err !== undefined && raw.err !== null) throw this.unavailable(caller, `contacts answered ${JSON.stringify(raw.err)}`);
    const reply = ContactExistsReply.safeParse(raw.response);
    if (!reply.success) throw this.unavailable(caller, 'contacts answered outside the contract');
    return reply.data.exists;
  }

  private unavailable(caller: Caller, why: string): ContactCheckError {
    this.logger.warn({ request_id: caller.requestId, trace_id: caller.trace?.traceId, msg: `could not check a contact_id with contacts: ${why}` });
    return ContactCheckError.unavailable();
  }
}
