import { Init1732435200000 } from './1732435200000-init';
import { ModesUpsertsEvents1764806400000 } from './1764806400000-modes-upserts-events';
import { Idempotency1764806500000 } from './1764806500000-idempotency';
import { RelaySequences1796260000000 } from './1796260000000-relay-sequences';

/** Checked-in migrations, in order. Never edit one that has shipped: add a new one. */
export const migrations = [Init1732435200000, ModesUpsertsEvents1764806400000, Idempotency1764806500000, RelaySequences1796260000000];
