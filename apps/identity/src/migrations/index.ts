import { Init1732435200000 } from './1732435200000-init';
import { Grants1764547200000 } from './1764547200000-grants';
import { EventsNotify1764547300000 } from './1764547300000-events-notify';
import { KeyNamesAndGrace1796083200000 } from './1796083200000-key-names-and-grace';
import { Idempotency1796083300000 } from './1796083300000-idempotency';
import { MembersAndSessions1796083400000 } from './1796083400000-members-and-sessions';
import { RelaySequences1796260000000 } from './1796260000000-relay-sequences';

/** Checked-in migrations, in order. Never edit one that has shipped: add a new one. */
export const migrations = [Init1732435200000, Grants1764547200000, EventsNotify1764547300000, KeyNamesAndGrace1796083200000, Idempotency1796083300000, MembersAndSessions1796083400000, RelaySequences1796260000000];
