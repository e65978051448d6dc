import { Init1732435200000 } from './1732435200000-init';
import { TouchpointCounts1764633600000 } from './1764633600000-touchpoint-counts';

/** Checked-in migrations, in order. Never edit one that has shipped: add a new one. */
export const migrations = [Init1732435200000, TouchpointCounts1764633600000];
