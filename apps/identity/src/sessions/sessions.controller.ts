import { ChangePasswordRequest, invalidRequest, Rpc, SessionHashRequest, SignInRequest, type SessionReply } from '@keyway/contracts';
import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import type { z } from 'zod';
import { SessionsService } from './sessions.service';

function parse<S extends z.ZodType>(schema: S, raw: unknown): z.infer<S> {
  const r = schema.safeParse(raw);
  if (!r.success) throw invalidRequest(r.error);
  return r.data;
}

/** The gateway's calls for `/auth/v1/session` and for every request that carries a session cookie. */
@Controller()
export class SessionsController {
  constructor(private readonly sessions: SessionsService) {}

  @MessagePattern(Rpc.sessionsCreate)
  async create(@Payload() raw: unknown): Promise<SessionReply> {
    return { record: await this.sessions.signIn(parse(SignInRequest, raw)) };
  }

  @MessagePattern(Rpc.sessionsVerify)
  async verify(@Payload() raw: unknown): Promise<SessionReply> {
    return { record: await this.sessions.verify(parse(SessionHashRequest, raw).session_hash) };
  }

  @MessagePattern(Rpc.sessionsDelete)
  async remove(@Payload() raw: unknown): Promise<null> {
    await this.sessions.end(parse(SessionHashRequest, raw).session_hash);
    return null;
  }

  @MessagePattern(Rpc.sessionsChangePassword)
  async changePassword(@Payload() raw: unknown): Promise<{ sessions_ended: number }> {
    return this.sessions.changePassword(parse(ChangePasswordRequest, raw));
  }
}
