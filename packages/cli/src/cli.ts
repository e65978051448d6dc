import { randomInt } from 'node:crypto';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { createKeywayClient, isKeywayError, type KeywayClient } from '@keyway/sdk';

/** Where the CLI writes and reads: the process's streams, or a test's. */
export interface Io {
  env: Record<string, string | undefined>;
  out(text: string): void;
  err(text: string): void;
  /** All of standard input (the admin's password). */
  stdin(): Promise<string>;
}

/** Exit codes: 0 done, 1 the API (or the network) refused, 2 the command line is wrong. */
const EXIT_API = 1;
const EXIT_USAGE = 2;

class UsageError extends Error {}

const USAGE = `Usage: keyway <command> [options]

Operator commands, over the admin API (/admin/v1) at KEYWAY_ADMIN_URL with the operator token
KEYWAY_ADMIN_TOKEN:

  keyway tenants create --name <name> [--admin-email <email> [--admin-name <name>] [--admin-password-stdin]]
                        [--idempotency-key <key>]
      Create a tenant and its live root key (every scope; shown once). With --admin-email, also
      its first admin member, who signs in to the dashboard: the password is read from standard
      input with --admin-password-stdin, else generated and shown once.
  keyway tenants list [--page <n>] [--page-size <n>] [--after <cursor>] [--all]
      The tenants, newest first (50 a page; --all walks every page).
  keyway tenants root-key <tenant-id> [--environment live|test]
      Issue a new root key of that mode (shown once) and revoke the mode's older root keys.

Incident tools:

  keyway keys find <prefix>
      The key a prefix (kw_live_xxxxxxxx) names, in any tenant: tenant, name, status, scopes,
      created and last used. Given a whole key, only its prefix is sent. Exit 1 when none.
  keyway keys revoke <prefix> --reason <why>
      Find the key, then revoke it (every gateway drops it before this answers). The reason
      (e.g. leaked) is required: it goes into the tenant's audit trail with the operator.
  keyway relay status
      Identity's outbox relays: events waiting for JetStream, the oldest one's wait (lag), and the
      replica that holds the relay's lock. Exit 1 when a relay has no leader.
  keyway audit verify --tenant <tenant-id>
      Walk the tenant's audit hash chain. Exit 0 verified, 1 not (or refused).

Options: --json (the API's answer as JSON, for scripts), --help, --version.
Environment: KEYWAY_ADMIN_URL (the gateway's admin listener, e.g. http://127.0.0.1:3100),
KEYWAY_ADMIN_TOKEN (the operator token; npm start keeps it in .keyway/admin-token).
Exit codes: 0 done, 1 refused by the API or unreachable, 2 a wrong command line.
`;

const COMMON = { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const satisfies ParseArgsConfig['options'];

function parse<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O, positionals: number) {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...COMMON, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  if (parsed.positionals.length > positionals) throw new UsageError(`Unexpected argument: ${parsed.positionals[positionals] ?? ''}`);
  return parsed;
}

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new UsageError(`${flag} must be a whole number ≥ 1`);
  return Number(value);
}

/** The operator's client, from the environment; a clear word when it is not set. */
function adminClient(io: Io): KeywayClient {
  const url = io.env['KEYWAY_ADMIN_URL']?.trim();
  const token = io.env['KEYWAY_ADMIN_TOKEN']?.trim();
  const missing = [!url && 'KEYWAY_ADMIN_URL (the admin API, e.g. http://127.0.0.1:3100)', !token && 'KEYWAY_ADMIN_TOKEN (the operator token)'].filter(Boolean);
  if (missing.length > 0 || !url || !token) throw new UsageError(`Set ${missing.join(' and ')}.`);
  if (!/^https?:\/\//.test(url)) throw new UsageError(`KEYWAY_ADMIN_URL must be an http(s) URL, not "${url}".`);
  return createKeywayClient({ baseUrl: url, apiKey: token });
}

/** A generated first password: 20 base62 characters (~119 bits), shown once. */
function generatedPassword(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from({ length: 20 }, () => alphabet[randomInt(alphabet.length)]).join('');
}

const ONCE = 'It will not be shown again: keep it now (a secret manager, not a chat or a ticket).';

async function tenantsCreate(args: string[], io: Io): Promise<number> {
  const { values } = parse(
    args,
    {
      name: { type: 'string' },
      'admin-email': { type: 'string' },
      'admin-name': { type: 'string' },
      'admin-password-stdin': { type: 'boolean' },
      'idempotency-key': { type: 'string' },
    },
    0,
  );
  if (values.help) return help(io);
  if (!values.name) throw new UsageError('tenants create needs --name <name>.');
  const email = values['admin-email'];
  if (email === undefined && (values['admin-name'] !== undefined || values['admin-password-stdin'])) throw new UsageError('--admin-name and --admin-password-stdin go with --admin-email.');
  let generated: string | undefined;
  let admin: { name: string; email: string; password: string } | undefined;
  if (email !== undefined) {
    let password: string;
    if (values['admin-password-stdin']) {
      // One line: what `echo "$PW" | keyway …` or a secret manager's pipe gives, without its newline.
      password = (await io.stdin()).replace(/\r?\n$/, '');
      if (password === '') throw new UsageError('--admin-password-stdin: standard input was empty.');
    } else {
      password = generated = generatedPassword();
    }
    admin = { name: values['admin-name'] ?? email.split('@')[0] ?? email, email, password };
  }
  const keyway = adminClient(io);
  const idempotencyKey = values['idempotency-key'];
  const created = await keyway.POST('/admin/v1/tenants', {
    body: { name: values.name, ...(admin ? { admin } : {}) },
    ...(idempotencyKey ? { params: { header: { 'Idempotency-Key': idempotencyKey } } } : {}),
  });
  if (values.json) {
    io.out(`${JSON.stringify(generated ? { ...created, admin_password: generated } : created, null, 2)}\n`);
    return 0;
  }
  const lines = [`Created tenant ${created.tenant.name} (${created.tenant.id}).`];
  if (created.admin) lines.push(`Admin member: ${created.admin.name} <${created.admin.email}> (${created.admin.id}), role ${created.admin.role}.`);
  if (generated) lines.push('', "The admin's generated password (they sign in to the dashboard with it; change it after):", `  ${generated}`, ONCE);
  lines.push('', ...rootKeyLines(created.root_key, created.tenant.id));
  io.out(`${lines.join('\n')}\n`);
  return 0;
}

/**
 * A root key's secret, once; or, when the answer was a replay of an earlier attempt (the same
 * Idempotency-Key), that the secret went to that attempt and how to get a usable one.
 */
function rootKeyLines(root: { prefix: string; key: string | null; scopes: string[] }, tenantId: string): string[] {
  if (root.key === null) {
    return [
      `Root key ${root.prefix}: this answer replays an earlier call with the same Idempotency-Key, and a secret is shown once only.`,
      `To get a usable root key, issue a new one: keyway tenants root-key ${tenantId}`,
    ];
  }
  return [`Root key ${root.prefix} (every scope: ${root.scopes.join(', ')}):`, `  ${root.key}`, ONCE];
}

async function tenantsList(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, { page: { type: 'string' }, 'page-size': { type: 'string' }, after: { type: 'string' }, all: { type: 'boolean' } }, 0);
  if (values.help) return help(io);
  const page = positiveInt(values.page, '--page');
  const pageSize = positiveInt(values['page-size'], '--page-size') ?? 50;
  if (values.all && (page !== undefined || values.after !== undefined)) throw new UsageError('--all walks every page: leave out --page and --after.');
  const keyway = adminClient(io);
  type Tenant = { id: string; name: string; created_at: string };
  const tenants: Tenant[] = [];
  let after = values.after;
  let last;
  do {
    last = await keyway.GET('/admin/v1/tenants', { params: { query: { pageSize, ...(page !== undefined ? { page } : {}), ...(after !== undefined ? { after } : {}) } } });
    tenants.push(...last.data);
    after = last.next_cursor ?? undefined;
  } while (values.all && after !== undefined);

  if (values.json) {
    io.out(`${JSON.stringify(values.all ? { data: tenants, total: tenants.length } : last, null, 2)}\n`);
    return 0;
  }
  if (tenants.length === 0) {
    io.out('No tenants. Create the first: keyway tenants create --name <name> --admin-email <email>\n');
    return 0;
  }
  const width = Math.max(...tenants.map((t) => t.id.length), 2);
  const rows = tenants.map((t) => `${t.id.padEnd(width)}  ${t.created_at.slice(0, 19).replace('T', ' ')}  ${t.name}`);
  const footer = values.all
    ? `${tenants.length} tenant${tenants.length === 1 ? '' : 's'}.`
    : `${tenants.length} of ${last.total_is_estimate ? 'about ' : ''}${last.total}${last.next_cursor ? `; next page: keyway tenants list --after ${last.next_cursor}` : ''}.`;
  const header = `${'ID'.padEnd(width)}  CREATED (UTC)        NAME`;
  io.out(`${[header, ...rows, footer].join('\n')}\n`);
  return 0;
}

async function tenantsRootKey(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, { environment: { type: 'string' } }, 1);
  if (values.help) return help(io);
  const tenantId = positionals[0];
  if (!tenantId) throw new UsageError('tenants root-key needs the tenant id: keyway tenants root-key <tenant-id>.');
  const environment = values.environment ?? 'live';
  if (environment !== 'live' && environment !== 'test') throw new UsageError('--environment is live or test.');
  const issued = await adminClient(io).POST('/admin/v1/tenants/{id}/root-key', { params: { path: { id: tenantId } }, body: { environment } });
  if (values.json) {
    io.out(`${JSON.stringify(issued, null, 2)}\n`);
    return 0;
  }
  const revoked = issued.revoked_key_ids.length > 0 ? `Revoked the older ${environment} root key${issued.revoked_key_ids.length === 1 ? '' : 's'}: ${issued.revoked_key_ids.join(', ')}.` : `No older ${environment} root key to revoke.`;
  io.out(`${[`New ${environment} root key for ${tenantId}.`, revoked, '', ...rootKeyLines(issued.root_key, tenantId)].join('\n')}\n`);
  return 0;
}

/** A prefix; a whole key is cut to its prefix here, so its secret never leaves this process. */
function prefixOf(arg: string | undefined, io: Io, command: string): string {
  if (!arg) throw new UsageError(`${command} needs the key's prefix: keyway ${command} kw_live_xxxxxxxx.`);
  const m = /^(kw_(?:live|test)_[a-z0-9]{8})(_.*)?$/.exec(arg.trim());
  if (!m) throw new UsageError(`"${arg.slice(0, 16)}…" is not a key prefix: kw_live_ or kw_test_ and 8 lowercase letters or digits.`);
  if (m[2]) io.err(`keyway: that is a whole key: only its prefix ${m[1]} is sent. Treat the key as leaked.\n`);
  return m[1]!;
}

type FoundKey = { id: string; tenant: { id: string; name: string | null }; name: string; prefix: string; environment: string; status: string; scopes: string[]; root: boolean; created_at: string; last_used_at: string | null };

const utc = (iso: string | null): string => (iso === null ? 'never' : `${iso.slice(0, 19).replace('T', ' ')} UTC`);

function keyLines(k: FoundKey, asked: string): string[] {
  return [
    `Key ${k.id} (${k.prefix}${k.prefix === asked ? '' : `, found by the rotated-away prefix ${asked}`}): ${k.status}`,
    `  tenant:     ${k.tenant.name ?? '(unnamed)'} (${k.tenant.id})`,
    `  name:       ${k.name}${k.root ? ' (a root key)' : ''}`,
    `  mode:       ${k.environment}`,
    `  scopes:     ${k.scopes.length > 0 ? k.scopes.join(', ') : '(none)'}`,
    `  created:    ${utc(k.created_at)}`,
    `  last used:  ${utc(k.last_used_at)}`,
  ];
}

async function findKey(io: Io, prefix: string): Promise<FoundKey | undefined> {
  const found = await adminClient(io).GET('/admin/v1/keys', { params: { query: { prefix } } });
  return found.data[0] as FoundKey | undefined;
}

async function keysFind(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, {}, 1);
  if (values.help) return help(io);
  const prefix = prefixOf(positionals[0], io, 'keys find');
  const key = await findKey(io, prefix);
  if (values.json) {
    io.out(`${JSON.stringify({ data: key ? [key] : [] }, null, 2)}\n`);
    return key ? 0 : EXIT_API;
  }
  if (!key) {
    io.err(`keyway: no key has the prefix ${prefix}.\n`);
    return EXIT_API;
  }
  io.out(`${keyLines(key, prefix).join('\n')}\n`);
  return 0;
}

async function keysRevoke(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, { reason: { type: 'string' } }, 1);
  if (values.help) return help(io);
  const prefix = prefixOf(positionals[0], io, 'keys revoke');
  const reason = values.reason?.trim();
  if (!reason) throw new UsageError('keys revoke needs --reason <why> (e.g. --reason leaked): it goes into the tenant\'s audit trail.');
  const key = await findKey(io, prefix);
  if (!key) {
    io.err(`keyway: no key has the prefix ${prefix}: nothing revoked.\n`);
    return EXIT_API;
  }
  if (key.status === 'revoked') {
    if (values.json) io.out(`${JSON.stringify(key, null, 2)}\n`);
    else io.out(`${[...keyLines(key, prefix), '', `Already revoked: nothing to do.`].join('\n')}\n`);
    return 0;
  }
  const revoked = await adminClient(io).POST('/admin/v1/keys/{id}/revoke', { params: { path: { id: key.id } }, body: { reason } });
  if (values.json) {
    io.out(`${JSON.stringify(revoked, null, 2)}\n`);
    return 0;
  }
  io.out(
    `${[
      `Revoked key ${key.id} (${revoked.prefix}, "${key.name}") of tenant ${key.tenant.name ?? ''} (${key.tenant.id}).`,
      `  reason: ${reason}`,
      'Every gateway dropped it before the API answered: it is refused from now on (401 key_revoked).',
      `The tenant's audit trail records the revoke, by the operator, with the reason.`,
    ].join('\n')}\n`,
  );
  return 0;
}

async function relayStatus(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, {}, 0);
  if (values.help) return help(io);
  const status = await adminClient(io).GET('/admin/v1/relay');
  const leaderless = status.relays.filter((r) => r.leader === null).length;
  if (values.json) {
    io.out(`${JSON.stringify(status, null, 2)}\n`);
    return leaderless > 0 ? EXIT_API : 0;
  }
  const rows = status.relays.map((r) => [
    r.name,
    String(r.backlog),
    r.oldest_unpublished_at === null ? '-' : utc(r.oldest_unpublished_at),
    `${r.lag_seconds} s`,
    r.leader === null ? 'NONE: no replica relays' : `${r.leader.replica ?? r.leader.client ?? 'unnamed'} (session pid ${r.leader.pid}${r.leader.since ? `, since ${utc(r.leader.since)}` : ''})`,
  ]);
  const header = ['RELAY', 'BACKLOG', 'OLDEST WAITING', 'LAG', 'LEADER'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  io.out(`${[line(header), ...rows.map(line), `Answered by identity replica ${status.answered_by}.`].join('\n')}\n`);
  return leaderless > 0 ? EXIT_API : 0;
}

async function auditVerify(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, { tenant: { type: 'string' } }, 0);
  if (values.help) return help(io);
  const tenantId = values.tenant?.trim();
  if (!tenantId) throw new UsageError('audit verify needs --tenant <tenant-id>.');
  const result = await adminClient(io).GET('/admin/v1/tenants/{id}/audit/verify', { params: { path: { id: tenantId } } });
  if (values.json) io.out(`${JSON.stringify(result, null, 2)}\n`);
  else if (result.verified) io.out(`The audit trail of ${tenantId} is verified: ${result.entries ?? 0} entries, head ${result.head ?? '(empty trail)'}.\n`);
  else io.out(`The audit trail of ${tenantId} is NOT verified: the chain breaks at ${result.first_bad?.id ?? '(its tail: entries are missing)'}: ${result.first_bad?.reason ?? 'unknown'}.\n`);
  return result.verified ? 0 : EXIT_API;
}

function help(io: Io): number {
  io.out(USAGE);
  return 0;
}

const COMMANDS: Record<string, (args: string[], io: Io) => Promise<number>> = {
  'tenants create': tenantsCreate,
  'tenants list': tenantsList,
  'tenants root-key': tenantsRootKey,
  'keys find': keysFind,
  'keys revoke': keysRevoke,
  'relay status': relayStatus,
  'audit verify': auditVerify,
};

/** Runs one command line (without `node keyway`); resolves to the exit code. Never throws. */
export async function run(argv: string[], io: Io, version: string): Promise<number> {
  const [group, command, ...rest] = argv;
  try {
    if (group === undefined || group === '--help' || group === '-h' || group === 'help') return help(io);
    if (group === '--version' || group === '-v') {
      io.out(`${version}\n`);
      return 0;
    }
    const handler = COMMANDS[`${group} ${command ?? ''}`];
    if (!handler) {
      if (['tenants', 'keys', 'relay', 'audit'].includes(group) && (command === undefined || command === '--help' || command === '-h')) return help(io);
      throw new UsageError(`Unknown command: ${[group, command].filter(Boolean).join(' ')}`);
    }
    return await handler(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`keyway: ${err.message}\nRun \`keyway --help\` for the commands.\n`);
      return EXIT_USAGE;
    }
    if (isKeywayError(err)) {
      const details = (err.details ?? []).map((d) => `\n  ${d.field}: ${d.message}`).join('');
      const hint = err.code === 'unauthorized' ? '\nCheck KEYWAY_ADMIN_TOKEN: it must be the token the gateway was started with.' : '';
      io.err(`keyway: ${err.message} (${err.code}, HTTP ${err.status}${err.requestId ? `, request ${err.requestId}` : ''})${details}${hint}\n`);
      return EXIT_API;
    }
    // fetch's "fetch failed": say where it could not reach, and why (the cause names ECONNREFUSED and the like).
    const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
    io.err(`keyway: could not reach the admin API at ${io.env['KEYWAY_ADMIN_URL'] ?? ''} (${err instanceof Error ? err.message : String(err)}${cause})\n`);
    return EXIT_API;
  }
}
