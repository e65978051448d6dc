import { KeywayError } from '@keyway/contracts';

/** Errors of the journeys module; the code says how the edge answers. */
export class JourneyError extends KeywayError {
  /** Also what another tenant's journey id gets: existence is never revealed across tenants. */
  static notFound(id: string): JourneyError {
    return new JourneyError('not_found', `No journey ${id}`);
  }

  /** A journey holds at most `max` of `what` (touchpoints, conversions): the answer names the limit. */
  static full(what: 'touchpoints' | 'conversions', max: number): JourneyError {
    return new JourneyError('conflict', `A journey holds at most ${max} ${what}; this one is full`, { limit: { [what]: max } });
  }

  static testModeOnly(): JourneyError {
    return new JourneyError('forbidden', 'Only test data can be emptied, from test mode');
  }
}
