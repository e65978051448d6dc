export { RateLimiter } from './rate-limiter';
export { rateLimitedError, rateLimitHeaders } from './rate-limit.http';
export { type RateLimitDecision } from './windows';
