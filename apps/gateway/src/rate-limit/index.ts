export { RateLimiter, type RateLimiterLogger, type RateLimiterOptions, type RateLimitStoreMode } from './rate-limiter';
export { RATE_LIMITER_OPTIONS, RateLimitModule, type RateLimitModuleAsyncOptions } from './rate-limit.module';
export { rateLimitedError, rateLimitHeaders } from './rate-limit.http';
export { WINDOWS, WINDOW_MS, type Clock, type RateLimitDecision } from './windows';
