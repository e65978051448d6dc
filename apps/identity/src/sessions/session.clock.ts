import { Injectable } from '@nestjs/common';

/** The sessions' clock: one provider, so tests move time on instead of sleeping. */
@Injectable()
export class SessionClock {
  now(): Date {
    return new Date();
  }
}
