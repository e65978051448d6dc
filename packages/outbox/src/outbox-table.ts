/**
 * The generic outbox a service writes in the same transaction as its own change: one row per
 * message, relayed to JetStream by `OutboxRelay`. `transaction_id` lets the relay read only below
 * the oldest transaction still in flight; the statement trigger wakes it at commit.
 * @public No caller yet: contacts and journeys get their outbox from it (the customers' domain
 * issue); identity's event store is its own outbox.
 */
export function outboxTableSql(table: string, channel: string): string[] {
  return [
    `CREATE TABLE ${table} (
      position bigserial PRIMARY KEY,
      transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
      id text NOT NULL UNIQUE,
      subject text NOT NULL,
      payload jsonb NOT NULL)`,
    `CREATE INDEX ${table}_relay_order ON ${table} (transaction_id, position)`,
    ...notifyOnInsertSql(table, channel),
  ];
}

/**
 * A statement-level trigger that NOTIFYs `channel` after every INSERT into `table`: the relay is
 * woken at commit (a notification is delivered only if its transaction commits) by the table
 * itself, whatever statement wrote to it.
 */
export function notifyOnInsertSql(table: string, channel: string): string[] {
  const fn = `${table}_notify_relay`;
  return [
    `CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('${channel}', ''); RETURN NULL; END $$`,
    `CREATE TRIGGER ${fn} AFTER INSERT ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION ${fn}()`,
  ];
}

export function dropNotifyOnInsertSql(table: string): string[] {
  const fn = `${table}_notify_relay`;
  return [`DROP TRIGGER ${fn} ON ${table}`, `DROP FUNCTION ${fn}()`];
}

/**
 * What the relay records on each row it relays (OutboxRelay's loss check): `stream_seq`, the
 * JetStream sequence that acknowledged it, and for a generic outbox `created_at`, when it was
 * written (the commit → ack lag; identity's event store has `occurred_at`). The relay updates each
 * row once: fillfactor 90 leaves new pages room for that update to stay HOT.
 */
export function relaySequenceSql(table: string, opts: { createdAt: boolean }): string[] {
  return [
    `ALTER TABLE ${table} ADD COLUMN stream_seq bigint`,
    ...(opts.createdAt ? [`ALTER TABLE ${table} ADD COLUMN created_at timestamptz NOT NULL DEFAULT now()`] : []),
    `ALTER TABLE ${table} SET (fillfactor = 90)`,
  ];
}

export function dropRelaySequenceSql(table: string, opts: { createdAt: boolean }): string[] {
  return [
    `ALTER TABLE ${table} RESET (fillfactor)`,
    ...(opts.createdAt ? [`ALTER TABLE ${table} DROP COLUMN created_at`] : []),
    `ALTER TABLE ${table} DROP COLUMN stream_seq`,
  ];
}
