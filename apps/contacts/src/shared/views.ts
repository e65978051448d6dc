import type { AccountView, ContactView } from '@keyway/contracts';
import type { Row } from './records';

const iso = (v: unknown): string => (v instanceof Date ? v : new Date(String(v))).toISOString();

/** A stored contact as the API (and its events) show it. */
export function contactView(r: Row): ContactView {
  return {
    id: r.id,
    type: r.type as ContactView['type'],
    name: String(r.name),
    email: String(r.email),
    external_id: r.external_id,
    account_id: (r.account_id as string | null) ?? null,
    properties: r.properties as ContactView['properties'],
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
  };
}

export function accountView(r: Row): AccountView {
  return {
    id: r.id,
    name: String(r.name),
    domain: (r.domain as string | null) ?? null,
    external_id: r.external_id,
    properties: r.properties as AccountView['properties'],
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
  };
}
