import { ContactExistsReply, ContactExistsRequest, Rpc } from '@keyway/contracts';
import { InjectNats } from '@keyway/runtime';
import type { NatsConnection } from '@nats-io/transport-node';
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
    let raw: { response?: unknown; err?: unknown };
    try {
      const msg = await this.nc.request(Rpc.contactsExists, payload, { timeout: this.config.CONTACTS_TIMEOUT_MS });
      raw = msg.json();
    } catch (err) {
      // No responders (contacts is down), a timeout, a closed connection or an unreadable reply.
      throw this.unavailable(err instanceof Error ? err.message : String(err));
    }
    if (raw.err !== undefined && raw.err !== null) throw this.unavailable(`contacts answered ${JSON.stringify(raw.err)}`);
    const reply = ContactExistsReply.safeParse(raw.response);
    if (!reply.success) throw this.unavailable('contacts answered outside the contract');
    return reply.data.exists;
  }

  private unavailable(why: string): ContactCheckError {
    this.logger.warn(`could not check a contact_id with contacts: ${why}`);
    return ContactCheckError.unavailable();
  }
}
