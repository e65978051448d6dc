import { KeywayError } from '@keyway/contracts';

/** Errors of the key aggregate; the code says how the edge answers. */
export class KeyError extends KeywayError {}
