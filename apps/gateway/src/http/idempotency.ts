import { createHash } from 'node:crypto';
import { IDEMPOTENCY_KEY_PATTERN, KeywayError, type RequestContext, type Route } from '@keyway/contracts';
import type { FastifyReply, FastifyRequest } from 'fastify';

const IDEMPOTENCY_HEADER = 'idempotency-key';
const REPLAYED_HEADER = 'Idempotent-Replayed';

/**
 * `Idempotency-Key` on a POST: validated here (8–255 printable ASCII, else 400), and forwarded
 * with a hash of what the request asks: the route, its path parameters and the body as canonical
 * JSON (keys sorted, so spacing and key order do not make a retry a "different body"; the same
 * key on another route or another id is a different request, `422`). Other methods ignore the
 * header: GET, PUT, PATCH and DELETE are idempotent or answer from the state.
 */
export function idempotencyOf(route: Pick<Route, 'method' | 'name'>, req: FastifyRequest, params: Record<string, string>, body: unknown): RequestContext['idempotency'] {
  if (route.method !== 'POST') return undefined;
  const raw = req.headers[IDEMPOTENCY_HEADER];
  if (raw === undefined) return undefined;
  const key = Array.isArray(raw) ? undefined : raw;
  if (key === undefined || !IDEMPOTENCY_KEY_PATTERN.test(key)) {
    throw new KeywayError('invalid_request', 'The request is invalid', {
      details: [{ field: 'Idempotency-Key', message: 'must be one header of 8 to 255 printable ASCII characters' }],
    });
  }
  const body_hash = createHash('sha256')
    .update(canonicalJson({ route: route.name, params, body: body ?? null }))
    .digest('hex');
  return { key, body_hash };
}

/** Marks an answer (success or error) that the service replayed from the first call. */
export function markReplayed(reply: FastifyReply | undefined, replayed: boolean | undefined): void {
  if (replayed === true && reply !== undefined) void reply.header(REPLAYED_HEADER, 'true');
}

/**
 * JSON with object keys sorted at every level: one text per value. A password, at any depth (a
 * member's, or the first admin's inside a tenant creation), is left out: the service stores the
 * hash beside the member's name and email, and a fast SHA-256 over them would be an offline oracle
 * for the password that argon2id protects. The cost: a retry with the same key and only another
 * password replays the first answer.
 */
function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([k, v]) => v !== undefined && !/password/i.test(k))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}
