import { SESSION_ABSOLUTE_MS, SESSION_IDLE_MS, SESSION_TOUCH_MS, type Actor, type ChangePasswordRequest, type Role, type SessionRecord, type SignInRequest } from '@keyway/contracts';
import { Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { recordMemberEvent } from '../users/member-events';
import { dummyHash, hashPassword, needsRehash, verifyPassword } from '../users/passwords';
import { UserError } from '../users/users.errors';
import { UsersService, type UserRow } from '../users/users.service';
import { SessionClock } from './session.clock';
import { SessionError } from './sessions.errors';

/** Failures in a row (per email and client address) before sign-in starts waiting. */
const FREE_FAILURES = 4;
const MAX_BLOCK_SECONDS = 15 * 60;
/** A run of failures older than this is forgotten. */
const FAILURES_FORGOTTEN_MS = 24 * 3_600_000;
/** A member of more tenants than this under one email signs in with a tenant_id. */
const MAX_CANDIDATES = 20;
const SWEEP_EVERY_MS = 10 * 60_000;

/** How long an attempt after `failures` failures in a row must wait: 0, …, then 1 s, 2 s, 4 s … up to 15 min. */
function backoffSeconds(failures: number): number {
  return failures <= FREE_FAILURES ? 0 : Math.min(2 ** (failures - FREE_FAILURES - 1), MAX_BLOCK_SECONDS);
}

type Candidate = UserRow & { tenant_name: string };
interface SessionRow {
  hash: string;
  member_id: string;
  tenant_id: string;
  created_at: Date;
  last_seen_at: Date;
  expires_at: Date;
  role: Role;
  name: string;
  email: string;
  tenant_name: string;
}

const record = (s: SessionRow): SessionRecord => ({
  member_id: s.member_id,
  tenant_id: s.tenant_id,
  role: s.role,
  name: s.name,
  email: s.email,
  tenant_name: s.tenant_name,
  idle_expires_at: new Date(s.last_seen_at.getTime() + SESSION_IDLE_MS).toISOString(),
  expires_at: s.expires_at.toISOString(),
});

const member = (c: Candidate): Actor => ({ type: 'member', id: c.id });
const SIGN_IN: Actor = { type: 'system', id: 'sign-in' };

/**
 * Dashboard sessions (DESIGN "Dashboard and members"). A session is found by the hash of its id
 * (the gateway minted the id and keeps it in the member's cookie only). It ends 30 minutes after
 * its last use (sliding: its last-seen time moves at most once a minute, so an active session
 * costs one write a minute, not one per request) or 12 hours after sign-in, whichever is first.
 */
@Injectable()
export class SessionsService implements OnModuleInit, OnModuleDestroy {
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly ds: DataSource,
    private readonly clock: SessionClock,
    private readonly users: UsersService,
  ) {}

  /**
   * Ended sessions are deleted when next looked up; those never looked up again, and runs of
   * failures nobody continued, are swept here every 10 minutes (any replica may: the deletes are
   * idempotent).
   */
  onModuleInit(): void {
    this.sweeper = setInterval(() => void this.sweep().catch(() => undefined), SWEEP_EVERY_MS);
    this.sweeper.unref();
  }

  onModuleDestroy(): void {
    if (this.sweeper) clearInterval(this.sweeper);
  }

  async sweep(): Promise<void> {
    const now = this.clock.now();
    await this.ds.query(`DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2`, [now, new Date(now.getTime() - SESSION_IDLE_MS)]);
    await this.ds.query(`DELETE FROM sign_in_attempts WHERE last_failure_at < $1 AND (blocked_until IS NULL OR blocked_until < $2)`, [new Date(now.getTime() - FAILURES_FORGOTTEN_MS), now]);
  }

  /**
   * Every attempt is counted before the password is checked, under a lock on its (email, client
   * address) row, so parallel guesses queue and count; a success forgets the run. Then one argon2
   * verification per member with that email (against a dummy hash when there is none), so an
   * unknown email and a wrong password answer alike, in about the same time.
   */
  async signIn(req: SignInRequest): Promise<SessionRecord> {
    const now = this.clock.now();
    const email = req.email.trim().toLowerCase();
    await this.countAttempt(email, req.client_address, now);
    const candidates: Candidate[] = await this.ds.query(
      `SELECT u.*, t.name AS tenant_name FROM users u JOIN tenants t ON t.id = u.tenant_id
        WHERE lower(u.email) = $1 AND ($2::text IS NULL OR u.tenant_id = $2) ORDER BY u.created_at, u.id LIMIT ${MAX_CANDIDATES}`,
      [email, req.tenant_id ?? null],
    );
    const matched: Candidate[] = [];
    if (candidates.length === 0) await verifyPassword(await dummyHash(), req.password);
    for (const c of candidates) if (await verifyPassword(c.password_hash, req.password)) matched.push(c);

    if (matched.length === 0) {
      // Recorded only where the attempt is known to be meant: the tenant was named, or one tenant
      // has a member with this email. Otherwise any tenant could add a member with someone's email
      // and read that person's mistyped sign-ins elsewhere, address and time, in its own trail.
      const meant = candidates.length === 1 ? candidates[0] : undefined;
      if (meant !== undefined) {
        // Not the member's doing: whoever tried is unknown, so the actor is the sign-in itself.
        await this.ds.transaction((tx) =>
          recordMemberEvent(tx, { type: 'sign_in_failed', tenant_id: meant.tenant_id, member_id: meant.id, actor: SIGN_IN, data: { client_address: req.client_address }, at: now }),
        );
      }
      throw SessionError.invalidCredentials();
    }
    if (matched.length > 1) {
      await this.forgetAttempts(this.ds, email, req.client_address);
      throw SessionError.tenantRequired(matched.map((c) => ({ id: c.tenant_id, name: c.tenant_name })));
    }
    const m = matched[0]!;
    const rehashed = needsRehash(m.password_hash) ? await hashPassword(req.password) : undefined;
    await this.ds.transaction(async (tx) => {
      await this.forgetAttempts(tx, email, req.client_address);
      await tx.query(`INSERT INTO sessions (hash, member_id, tenant_id, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $4, $5)`, [
        req.session_hash,
        m.id,
        m.tenant_id,
        now,
        new Date(now.getTime() + SESSION_ABSOLUTE_MS),
      ]);
      if (rehashed !== undefined) await tx.query(`UPDATE users SET password_hash = $2 WHERE id = $1 AND password_hash = $3`, [m.id, rehashed, m.password_hash]);
      await recordMemberEvent(tx, { type: 'signed_in', tenant_id: m.tenant_id, member_id: m.id, actor: member(m), data: { client_address: req.client_address }, at: now });
    });
    return record({ ...m, hash: req.session_hash, member_id: m.id, created_at: now, last_seen_at: now, expires_at: new Date(now.getTime() + SESSION_ABSOLUTE_MS) });
  }

  /** The session behind a hash, or null (unknown, ended, or past either expiry: then deleted). */
  async verify(hash: string): Promise<SessionRecord | null> {
    const now = this.clock.now();
    const rows: SessionRow[] = await this.ds.query(
      `SELECT s.*, u.role, u.name, u.email, t.name AS tenant_name
         FROM sessions s JOIN users u ON u.id = s.member_id JOIN tenants t ON t.id = s.tenant_id WHERE s.hash = $1`,
      [hash],
    );
    const s = rows[0];
    if (!s) return null;
    if (s.expires_at.getTime() <= now.getTime() || s.last_seen_at.getTime() + SESSION_IDLE_MS <= now.getTime()) {
      await this.ds.query(`DELETE FROM sessions WHERE hash = $1`, [hash]);
      return null;
    }
    if (now.getTime() - s.last_seen_at.getTime() >= SESSION_TOUCH_MS) {
      await this.ds.query(`UPDATE sessions SET last_seen_at = $2 WHERE hash = $1 AND last_seen_at < $2`, [hash, now]);
      s.last_seen_at = now;
    }
    return record(s);
  }

  /** Sign-out: the session is gone in the database and from every gateway's cache before this answers. */
  async end(hash: string): Promise<void> {
    const rows: Array<{ member_id: string }> = await this.ds.query(`DELETE FROM sessions WHERE hash = $1 RETURNING member_id`, [hash]);
    // TypeORM answers DELETE … RETURNING with [rows, count].
    const gone = (rows as unknown as [Array<{ member_id: string }>, number])[0]?.[0];
    if (gone) await this.users.dropSessions(gone.member_id);
  }

  /**
   * `POST /auth/v1/password`: the member behind the session changes their own password, whatever
   * their role, by giving the current one. A wrong current password is a password guess like a
   * failed sign-in, so it is counted in the same (email, client address) run, with the same
   * back-off: a stolen session gets no more guesses than the sign-in page gives. The write holds only
   * while the stored hash is still the one checked (a concurrent change: 409). Every other session
   * of the member ends; this one goes on (its id was minted at sign-in, by the gateway, so nothing
   * fixed it beforehand). The event says `password_changed`, never the password.
   */
  async changePassword(req: ChangePasswordRequest): Promise<{ sessions_ended: number }> {
    const now = this.clock.now();
    const session = await this.verify(req.session_hash);
    if (session === null) throw SessionError.ended();
    const [m] = (await this.ds.query(`SELECT * FROM users WHERE id = $1 AND tenant_id = $2`, [session.member_id, session.tenant_id])) as UserRow[];
    if (m === undefined) throw SessionError.ended();
    const email = m.email.trim().toLowerCase();
    await this.countAttempt(email, req.client_address, now);
    if (!(await verifyPassword(m.password_hash, req.current_password))) throw UserError.currentPasswordWrong();
    // The slow hash before the transaction: no connection is held for it.
    const passwordHash = await hashPassword(req.new_password);
    const ended = await this.ds.transaction(async (tx) => {
      await this.forgetAttempts(tx, email, req.client_address);
      const [, changed] = (await tx.query(`UPDATE users SET password_hash = $3, updated_at = now() WHERE id = $1 AND password_hash = $2`, [m.id, m.password_hash, passwordHash])) as [unknown, number];
      if (changed !== 1) throw UserError.changedMeanwhile(m.id);
      const [, count] = (await tx.query(`DELETE FROM sessions WHERE member_id = $1 AND hash <> $2`, [m.id, req.session_hash])) as [unknown, number];
      await recordMemberEvent(tx, { type: 'updated', tenant_id: m.tenant_id, member_id: m.id, actor: { type: 'member', id: m.id }, data: { password_changed: true, sessions_ended: count }, at: now });
      return count;
    });
    // Every gateway drops the member's cached sessions before this answers: the ended ones fail on their next request.
    await this.users.dropSessions(m.id);
    return { sessions_ended: ended };
  }

  private async countAttempt(email: string, address: string, now: Date): Promise<void> {
    await this.ds.transaction(async (tx) => {
      await tx.query(`INSERT INTO sign_in_attempts (email, client_address, failures, last_failure_at) VALUES ($1, $2, 0, $3) ON CONFLICT DO NOTHING`, [email, address, now]);
      const [row] = (await tx.query(`SELECT failures, blocked_until, last_failure_at FROM sign_in_attempts WHERE email = $1 AND client_address = $2 FOR UPDATE`, [email, address])) as Array<{
        failures: number;
        blocked_until: Date | null;
        last_failure_at: Date;
      }>;
      if (row!.blocked_until !== null && row!.blocked_until.getTime() > now.getTime()) {
        throw SessionError.tooManyAttempts(Math.ceil((row!.blocked_until.getTime() - now.getTime()) / 1000));
      }
      const failures = now.getTime() - row!.last_failure_at.getTime() > FAILURES_FORGOTTEN_MS ? 1 : row!.failures + 1;
      const wait = backoffSeconds(failures);
      await tx.query(`UPDATE sign_in_attempts SET failures = $3, blocked_until = $4, last_failure_at = $5 WHERE email = $1 AND client_address = $2`, [
        email,
        address,
        failures,
        wait > 0 ? new Date(now.getTime() + wait * 1000) : null,
        now,
      ]);
    });
  }

  private async forgetAttempts(db: Pick<DataSource, 'query'>, email: string, address: string): Promise<void> {
    await db.query(`DELETE FROM sign_in_attempts WHERE email = $1 AND client_address = $2`, [email, address]);
  }
}
