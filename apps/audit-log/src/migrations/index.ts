import { AuditEvents1732521600000 } from './1732521600000-audit-events';
import { AuditChain1764633600000 } from './1764633600000-audit-chain';
import { AuditLinkedAt1764633600001 } from './1764633600001-audit-linked-at';
import { Usage1796158800000 } from './1796158800000-usage';
import { AuditMembers1796170000000 } from './1796170000000-audit-members';
import { AuditHotLinks1796170000001 } from './1796170000001-audit-hot-links';
import { AuditTimeRange1796180000000 } from './1796180000000-audit-time-range';
import { AuditTenants1796180000001 } from './1796180000001-audit-tenants';
import { AuditHeadsRoom1796190000000 } from './1796190000000-audit-heads-room';

/** Checked-in migrations, in order. Never edit one that has shipped: add a new one. */
export const migrations = [AuditEvents1732521600000, AuditChain1764633600000, AuditLinkedAt1764633600001, Usage1796158800000, AuditMembers1796170000000, AuditHotLinks1796170000001, AuditTimeRange1796180000000, AuditTenants1796180000001, AuditHeadsRoom1796190000000];
