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

function help(io: Io): number {
  io.out(USAGE);
  return 0;
}

const COMMANDS: Record<string, (args: string[], io: Io) => Promise<number>> = {
  'tenants create': tenantsCreate,
  'tenants list': tenantsList,
  'tenants root-key': tenantsRootKey,
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
      if (group === 'tenants' && (command === undefined || command === '--help' || command === '-h')) return help(io);
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
