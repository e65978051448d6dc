import { AuditEvents1732521600000 } from './1732521600000-audit-events';

/** Checked-in migrations, in order. Never edit one that has shipped: add a new one. */
export const migrations = [AuditEvents1732521600000];
