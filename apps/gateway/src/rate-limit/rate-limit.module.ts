import { type DynamicModule, Module } from '@nestjs/common';
import { RateLimiter, type RateLimiterOptions } from './rate-limiter';

export const RATE_LIMITER_OPTIONS = Symbol('RATE_LIMITER_OPTIONS');

export interface RateLimitModuleAsyncOptions {
  imports?: DynamicModule['imports'];
  inject?: Array<string | symbol | (abstract new (...args: never[]) => unknown)>;
  useFactory: (...args: never[]) => RateLimiterOptions | Promise<RateLimiterOptions>;
}

/**
 * Provides `RateLimiter` (closed on shutdown through its `onModuleDestroy`). The class itself
 * stays free of Nest so the bench and other tools can use it as is.
 */
@Module({})
export class RateLimitModule {
  static register(options: RateLimiterOptions): DynamicModule {
    return {
      module: RateLimitModule,
      providers: [{ provide: RateLimiter, useFactory: () => new RateLimiter(options) }],
      exports: [RateLimiter],
    };
  }

  static registerAsync(options: RateLimitModuleAsyncOptions): DynamicModule {
    return {
      module: RateLimitModule,
      imports: options.imports ?? [],
      providers: [
        { provide: RATE_LIMITER_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] },
        { provide: RateLimiter, useFactory: (o: RateLimiterOptions) => new RateLimiter(o), inject: [RATE_LIMITER_OPTIONS] },
      ],
      exports: [RateLimiter],
    };
  }
}
