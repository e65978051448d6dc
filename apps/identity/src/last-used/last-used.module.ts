import { Module } from '@nestjs/common';
import { LastUsedConsumer } from './last-used.consumer';

/** The last-used projection: `used` events move each key's `last_used_at` forward. */
@Module({ providers: [LastUsedConsumer] })
export class LastUsedModule {}
