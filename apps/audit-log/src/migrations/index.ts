import { AuditEvents1732521600000 } from './1732521600000-audit-events';
import { AuditChain1764633600000 } from './1764633600000-audit-chain';

/** Checked-in migrations, in order. Never edit one that has shipped: add a new one. */
export const migrations = [AuditEvents1732521600000, AuditChain1764633600000];
