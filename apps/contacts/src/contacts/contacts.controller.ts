import { ContactExistsRequest, ContactListQuery, CreateContactBody, IdParams, Rpc, UpdateContactBody, invalidRequest, type ContactExistsReply } from '@keyway/contracts';
import { parseRpc } from '@keyway/runtime';
import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { ContactsService } from './contacts.service';


@Controller()
export class ContactsController {
  constructor(private readonly contacts: ContactsService) {}

  @MessagePattern(Rpc.contactsList)
  list(@Payload() raw: unknown) {
    const r = parseRpc(raw, { query: ContactListQuery });
    return this.contacts.list(r.ctx.tenant_id, r.query);
  }

  @MessagePattern(Rpc.contactsGet)
  get(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams });
    return this.contacts.get(r.ctx.tenant_id, r.params.id);
  }

  @MessagePattern(Rpc.contactsCreate)
  create(@Payload() raw: unknown) {
    const r = parseRpc(raw, { body: CreateContactBody });
    return this.contacts.create(r.ctx.tenant_id, r.body);
  }

  @MessagePattern(Rpc.contactsUpdate)
  update(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams, body: UpdateContactBody });
    return this.contacts.update(r.ctx.tenant_id, r.params.id, r.body);
  }

  /** Not a routed request: another service asks (SERVICE_CALLS), with the tenant it acts for. */
  @MessagePattern(Rpc.contactsExists)
  async exists(@Payload() raw: unknown): Promise<ContactExistsReply> {
    const r = ContactExistsRequest.safeParse(raw);
    if (!r.success) throw invalidRequest(r.error, 'Invalid contact check');
    return { exists: await this.contacts.exists(r.data.tenant_id, r.data.id) };
  }

  @MessagePattern(Rpc.contactsDelete)
  async remove(@Payload() raw: unknown) {
    const r = parseRpc(raw, { params: IdParams });
    await this.contacts.remove(r.ctx.tenant_id, r.params.id);
    return null;
  }
}
