import {
  ContactBatchBody,
  ContactExistsRequest,
  ContactListQuery,
  CreateContactBody,
  ExternalIdParams,
  IdParams,
  Rpc,
  UpdateContactBody,
  UpsertContactBody,
  invalidRequest,
  paged,
  type ContactExistsReply,
  type ContactUpsertReply,
} from '@keyway/contracts';
import { parseRpc } from '@keyway/runtime';
import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { callerOf } from '../shared/caller';
import { ContactsService } from './contacts.service';

const ListQuery = paged(ContactListQuery);

@Controller()
export class ContactsController {
  constructor(private readonly contacts: ContactsService) {}

  @MessagePattern(Rpc.contactsList)
  list(@Payload() raw: unknown) {
    const r = parseRpc(raw, { query: ListQuery });
    return this.contacts.list(callerOf(r.ctx), r.query);
  }

  @MessagePattern(Rpc.contactsGet)
  get(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams });
    return this.contacts.get(callerOf(r.ctx), r.params.id);
  }

  @MessagePattern(Rpc.contactsCreate)
  create(@Payload() raw: unknown) {
    const r = parseRpc(raw, { body: CreateContactBody });
    return this.contacts.create(callerOf(r.ctx), r.body);
  }

  @MessagePattern(Rpc.contactsUpdate)
  update(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams, body: UpdateContactBody });
    return this.contacts.update(callerOf(r.ctx), r.params.id, r.body);
  }

  /** `{status: 201|200, body}`: the gateway answers `body` with that status (ContactUpsertReply). */
  @MessagePattern(Rpc.contactsUpsert)
  upsert(@Payload() raw: unknown): Promise<ContactUpsertReply> {
    const r = parseRpc(raw, { params: ExternalIdParams, body: UpsertContactBody });
    return this.contacts.upsert(callerOf(r.ctx), r.params.external_id, r.body);
  }

  @MessagePattern(Rpc.contactsBatch)
  batch(@Payload() raw: unknown) {
    const r = parseRpc(raw, { body: ContactBatchBody });
    return this.contacts.batch(callerOf(r.ctx), r.body.items);
  }

  /** Not a routed request: another service asks (SERVICE_CALLS), with the tenant and mode it acts for. */
  @MessagePattern(Rpc.contactsExists)
  async exists(@Payload() raw: unknown): Promise<ContactExistsReply> {
    const r = ContactExistsRequest.safeParse(raw);
    if (!r.success) throw invalidRequest(r.error, 'Invalid contact check');
    return { exists: await this.contacts.exists(r.data.tenant_id, r.data.id, r.data.environment ?? 'live') };
  }

  @MessagePattern(Rpc.contactsDelete)
  async remove(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams });
    await this.contacts.remove(callerOf(r.ctx), r.params.id);
    return null;
  }
}
