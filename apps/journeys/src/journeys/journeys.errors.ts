import { KeywayError } from '@keyway/contracts';

/** Errors of the journeys module; the code says how the edge answers. */
export class JourneyError extends KeywayError {
  /** Also what another tenant's journey id gets: existence is never revealed across tenants. */
  static notFound(id: string): JourneyError {
    return new JourneyError('not_found', `No journey ${id}`);
  }

  /** A journey holds at most `max` of `what` (touchpoints, conversions). */
  static full(what: string, max: number): JourneyError {
    return new JourneyError('conflict', `A journey holds at most ${max} ${what}; this one is full`);
  }
}
