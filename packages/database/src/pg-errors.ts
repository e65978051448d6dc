/**
 * Postgres error codes, read the same way everywhere: TypeORM wraps the driver's error in
 * `driverError`, a plain `pg` client throws it as is.
 */
interface PgErrorLike {
  code?: unknown;
  constraint?: unknown;
  driverError?: { code?: unknown; constraint?: unknown };
}

function driver(err: unknown): { code?: string; constraint?: string } {
  if (typeof err !== 'object' || err === null) return {};
  const e = err as PgErrorLike;
  const d = e.driverError ?? e;
  return {
    ...(typeof d.code === 'string' && { code: d.code }),
    ...(typeof d.constraint === 'string' && { constraint: d.constraint }),
  };
}

/** The SQLSTATE of a Postgres error, or undefined for anything else. */
export function pgErrorCode(err: unknown): string | undefined {
  return driver(err).code;
}

/** A unique violation (23505), of `constraint` when one is named. */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  const d = driver(err);
  return d.code === '23505' && (constraint === undefined || d.constraint === constraint);
}

/** Postgres refused the data itself (class 22 data exception, 23 integrity violation): a retry fails the same way. */
export function isDataError(err: unknown): boolean {
  const code = driver(err).code;
  return code !== undefined && /^2[23]/.test(code);
}
