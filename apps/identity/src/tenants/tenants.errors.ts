import { KeywayError } from '@keyway/contracts';

/** Errors of the tenants module; the code says how the edge answers. */
export class TenantError extends KeywayError {}
