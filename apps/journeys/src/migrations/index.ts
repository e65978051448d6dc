import { Init1732435200000 } from './1732435200000-init';
import { TouchpointCounts1764633600000 } from './1764633600000-touchpoint-counts';
import { Modes1764806400000 } from './1764806400000-modes';
import { DomainEvents1764806460000 } from './1764806460000-domain-events';
import { Idempotency1764806520000 } from './1764806520000-idempotency';
import { RelaySequences1796260000000 } from './1796260000000-relay-sequences';

/** Checked-in migrations, in order. Never edit one that has shipped: add a new one. */
export const migrations = [Init1732435200000, TouchpointCounts1764633600000, Modes1764806400000, DomainEvents1764806460000, Idempotency1764806520000, RelaySequences1796260000000];
