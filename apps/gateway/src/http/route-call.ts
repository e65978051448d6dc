import { KeywayError, type Route, type RpcRequest } from '@keyway/contracts';
import type { TraceContext } from '@keyway/runtime';
import type { Gateway } from '../gateway-core';
import type { RpcOutcome } from '../nats/rpc-client';
import type { Caller } from './request-path';

/**
 * The parts of a route row beyond "one subject, one answer": a route for test keys only, a route
 * several services must all confirm (`alsoSubjects`), and an answer whose status the service
 * chose (`statusInReply`: an upsert's 201 or 200).
 */

/** `testModeOnly`: a live key is `403 forbidden` (it may not empty data of either mode). */
export function requireMode(route: Route, caller: Caller): void {
  if (route.testModeOnly && caller.key.record.environment !== 'test') {
    throw new KeywayError('forbidden', `${route.method} ${route.path.replace(/:(\w+)/g, '{$1}')} takes a test key (kw_test_…): a live key may not use it`);
  }
}

/**
 * One request to the route's subject, or to every subject at once when it names others: all must
 * confirm. No answer from one is `503` (the others may have done their part; the call is safe to
 * repeat); otherwise the first refusal in the row's order is the answer.
 */
export async function callRoute(gateway: Gateway, route: Route, message: RpcRequest, trace?: TraceContext): Promise<RpcOutcome> {
  if (route.alsoSubjects === undefined || route.alsoSubjects.length === 0) return gateway.rpc.call(route.subject, message, undefined, trace);
  const outcomes = await Promise.all([route.subject, ...route.alsoSubjects].map((s) => gateway.rpc.call(s, message, undefined, trace)));
  const failed = outcomes.filter((o) => !o.ok);
  return failed.find((o) => !o.ok && o.error.code === 'unavailable') ?? failed[0] ?? outcomes[0]!;
}

/** The status and body to answer: the row's, or the service's own for `statusInReply` routes. */
export function answerOf(route: Route, response: unknown): { status: number; body: unknown } {
  if (!route.statusInReply) return { status: route.status, body: response };
  const r = response as { status?: unknown; body?: unknown } | null;
  if (r === null || typeof r !== 'object' || (r.status !== 200 && r.status !== 201) || typeof r.body !== 'object' || r.body === null) {
    throw new KeywayError('internal', 'Something went wrong on our side');
  }
  return { status: r.status, body: r.body };
}
