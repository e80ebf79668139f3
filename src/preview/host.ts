import { DurableObject } from "cloudflare:workers";
import { sql } from "drizzle-orm";
import type { TunnelTarget } from "../agents/tunnel-protocol.ts";
import { SHARE_TOKEN_PATTERN, TOKEN_PATTERN } from "../auth/tokens.ts";
import { getConfig } from "../config.ts";
import { getDb, type Db } from "../db/client.ts";
import { randomHex, sha256Hex } from "../lib/crypto.ts";
import { Logger, type LogLevel } from "../lib/logger.ts";
import { snapshotSelect, toSnapshot, type HostSnapshot, type SnapshotRow } from "./snapshot.ts";

/** A team member's preview session lasts this long; then the visitor signs in again (GitHub answers at once). */
export const MEMBER_SESSION_SECONDS = 12 * 60 * 60;
/** A session's team membership is checked against the database again after this long. */
export const MEMBERSHIP_RECHECK_MS = 5 * 60 * 1000;
/** A validated X-Stagely-Token is trusted this long before it is looked up again (revocation takes at most this). */
export const TOKEN_CACHE_MS = 60 * 1000;
/** `last_request_at` is written (and the snapshot refreshed from the database) at most this often. */
export const TOUCH_INTERVAL_MS = 60 * 1000;
/** A one-time sign-in code is good for this long. */
export const SIGN_IN_CODE_SECONDS = 120;
/** An unknown host is looked up in the database at most this often. */
const ABSENT_RECHECK_MS = 60 * 1000;

export type Viewer = "member" | "share" | "public";

export interface AdmitRequest {
  /** The environment's subdomain hash (this object's name). */
  hash: string;
  /** `<route>--<hash>` hosts name a route; null for the main host. */
  route: string | null;
  /** Values of the preview session cookie (a tossed duplicate may come along). */
  cookies: string[];
  /** `X-Stagely-Token`: a team member's API token or a share token. */
  token: string | null;
  /** The `stagely_share` query parameter. */
  share: string | null;
}

/** What the Worker needs to answer an admitted request: the state, and where the app is. */
export interface PreviewView {
  environmentId: string;
  status: HostSnapshot["status"];
  agentId: string | null;
  /** Null when the environment's config exposes nothing (for this host). */
  target: TunnelTarget | null;
  run: HostSnapshot["run"];
}

export type Admission =
  | { outcome: "not_found" }
  | { outcome: "sign_in" }
  | { outcome: "invalid_token"; message: string }
  | { outcome: "admitted"; viewer: Viewer; view: PreviewView; cookie: { value: string; maxAgeSeconds: number } | null };

type Stored = { absent: true; checkedAt: number } | { absent: false; snapshot: HostSnapshot };

interface SessionRow extends Record<string, SqlStorageValue> {
  kind: string;
  user_id: string | null;
  share_token_id: string | null;
  route: string;
  expires_at: number;
  checked_at: number;
}

/**
 * One instance per preview host (named by the environment's subdomain hash). Answers "may this visitor see this
 * preview, and where is it?" from what it holds: a snapshot of the environment pushed by the pipeline
 * (`publish`), its own sessions (host-only cookies minted from one-time sign-in codes or share links) and a short
 * cache of validated tokens. The database is used only off the hot path: once a minute while visited (recording
 * `last_request_at` and re-reading the snapshot in the same statement, which also heals a missed publish), to check
 * an X-Stagely-Token or a session's membership now and then, and once for a host it has never heard of.
 */
export class PreviewHost extends DurableObject<Env> {
  private readonly tokens = new Map<string, { userId: string | null; member: boolean; until: number }>();
  private touching: Promise<void> | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS sessions (
      id_hash TEXT PRIMARY KEY, kind TEXT NOT NULL, user_id TEXT, share_token_id TEXT, route TEXT NOT NULL,
      expires_at INTEGER NOT NULL, checked_at INTEGER NOT NULL)`);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS codes (code_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL, route TEXT NOT NULL, expires_at INTEGER NOT NULL)");
  }

  // ---------------------------------------------------------------- state, from the pipeline

  /** Replaces the snapshot unless it is older than the one held. An ended environment forgets its sessions. */
  async publish(snapshot: HostSnapshot): Promise<void> {
    this.store(snapshot);
  }

  /** The snapshot held now (tests and diagnostics). */
  async snapshot(): Promise<HostSnapshot | null> {
    const stored = this.ctx.storage.kv.get<Stored>("state");
    return stored && !stored.absent ? stored.snapshot : null;
  }

  // ---------------------------------------------------------------- visitors

  async admit(request: AdmitRequest): Promise<Admission> {
    const snapshot = await this.current(request.hash);
    if (!snapshot || snapshot.status === "terminated" || snapshot.status === "reaped") return { outcome: "not_found" };
    const target = request.route === null ? (snapshot.exposure?.expose ?? null) : (snapshot.exposure?.routes.find((r) => r.name === request.route) ?? null);
    if (request.route !== null && snapshot.exposure && !target) return { outcome: "not_found" };
    const view: PreviewView = {
      environmentId: snapshot.environment_id,
      status: snapshot.status,
      agentId: snapshot.agent_id,
      target: target ? { service: target.service, port: target.port } : null,
      run: snapshot.run,
    };
    const route = request.route ?? "";
    const admitted = (viewer: Viewer, cookie: { value: string; maxAgeSeconds: number } | null = null): Admission => {
      this.touch(snapshot);
      return { outcome: "admitted", viewer, view, cookie };
    };

    // A share link that no longer works still lets in a visitor who has another credential.
    let refusal: Admission | null = null;
    if (request.share !== null) {
      const share = await this.shareToken(snapshot, request.share);
      if (share) {
        const maxAgeSeconds = Math.max(1, Math.floor((Date.parse(share.expires_at) - Date.now()) / 1000));
        return admitted("share", { value: await this.newSession({ kind: "share", userId: null, shareTokenId: share.id, route, ttlSeconds: maxAgeSeconds }), maxAgeSeconds });
      }
      refusal = { outcome: "invalid_token", message: "this share link has expired or was revoked; ask the team for a new one" };
    }
    if (request.token !== null) {
      if (SHARE_TOKEN_PATTERN.test(request.token)) {
        return (await this.shareToken(snapshot, request.token)) ? admitted("share") : { outcome: "invalid_token", message: "the share token has expired or was revoked" };
      }
      if (!TOKEN_PATTERN.test(request.token)) return { outcome: "invalid_token", message: "X-Stagely-Token must be an API token (stg_pat_...) or a share token (stg_shr_...)" };
      const check = await this.checkToken(snapshot, request.token);
      if (!check.userId) return { outcome: "invalid_token", message: "X-Stagely-Token is invalid, expired or revoked" };
      // A valid token of someone outside the team: the preview does not exist for them.
      return check.member ? admitted("member") : { outcome: "not_found" };
    }
    for (const cookie of request.cookies) {
      const viewer = await this.session(snapshot, cookie, route);
      if (viewer) return admitted(viewer);
    }
    return refusal ?? (snapshot.access === "public" ? admitted("public") : { outcome: "sign_in" });
  }

  /** After GitHub sign-in on the API host (membership checked there): a code the preview host exchanges for a cookie. */
  async mintSignInCode(input: { hash: string; userId: string; route: string | null }): Promise<string> {
    const code = randomHex(32);
    const now = Date.now();
    this.ctx.storage.sql.exec("DELETE FROM codes WHERE expires_at <= ?", now);
    this.ctx.storage.sql.exec(
      "INSERT INTO codes (code_hash, user_id, route, expires_at) VALUES (?, ?, ?, ?)",
      await sha256Hex(code),
      input.userId,
      input.route ?? "",
      now + SIGN_IN_CODE_SECONDS * 1000,
    );
    return code;
  }

  /** Exchanges a one-time code (once, before it expires, on the host it was made for) for a member session cookie. */
  async redeemSignInCode(input: { hash: string; code: string; route: string | null }): Promise<{ value: string; maxAgeSeconds: number } | null> {
    const codeHash = await sha256Hex(input.code);
    const [row] = this.ctx.storage.sql
      .exec<{ user_id: string; route: string; expires_at: number }>("DELETE FROM codes WHERE code_hash = ? RETURNING user_id, route, expires_at", codeHash)
      .toArray();
    if (!row || row.expires_at <= Date.now() || row.route !== (input.route ?? "")) return null;
    const snapshot = await this.current(input.hash);
    if (!snapshot || snapshot.status === "terminated" || snapshot.status === "reaped") return null;
    const value = await this.newSession({ kind: "member", userId: row.user_id, shareTokenId: null, route: row.route, ttlSeconds: MEMBER_SESSION_SECONDS });
    return { value, maxAgeSeconds: MEMBER_SESSION_SECONDS };
  }

  // ---------------------------------------------------------------- credentials

  private async shareToken(snapshot: HostSnapshot, token: string): Promise<HostSnapshot["share_tokens"][number] | undefined> {
    if (!SHARE_TOKEN_PATTERN.test(token)) return undefined;
    const hash = await sha256Hex(token);
    return snapshot.share_tokens.find((s) => s.hash === hash && Date.parse(s.expires_at) > Date.now());
  }

  /** An API token: whose it is and whether they belong to the owning team (cached for TOKEN_CACHE_MS). */
  private async checkToken(snapshot: HostSnapshot, token: string): Promise<{ userId: string | null; member: boolean }> {
    const hash = await sha256Hex(token);
    const cached = this.tokens.get(hash);
    if (cached && cached.until > Date.now()) return cached;
    const { rows } = await this.db().execute<{ user_id: string; member: boolean }>(sql`
      SELECT u.id AS user_id,
             EXISTS (SELECT 1 FROM team_members m JOIN teams t ON t.id = m.team_id AND t.deleted_at IS NULL
                      WHERE m.user_id = u.id AND m.team_id = ${snapshot.team_id}) AS member
        FROM api_tokens k JOIN users u ON u.id = k.user_id
       WHERE k.token_hash = ${hash} AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now()) AND u.is_active`);
    const result = { userId: rows[0]?.user_id ?? null, member: rows[0]?.member === true, until: Date.now() + TOKEN_CACHE_MS };
    if (this.tokens.size > 1000) this.tokens.clear();
    this.tokens.set(hash, result);
    return result;
  }

  /** A session cookie minted by this host for this route: who it lets in, if anyone. */
  private async session(snapshot: HostSnapshot, cookie: string, route: string): Promise<Viewer | null> {
    if (!/^[0-9a-f]{64}$/.test(cookie)) return null;
    const idHash = await sha256Hex(cookie);
    const [row] = this.ctx.storage.sql.exec<SessionRow>("SELECT * FROM sessions WHERE id_hash = ?", idHash).toArray();
    if (!row || row.route !== route || row.expires_at <= Date.now()) return null;
    if (row.kind === "share") return snapshot.share_tokens.some((s) => s.id === row.share_token_id && Date.parse(s.expires_at) > Date.now()) ? "share" : null;
    if (Date.now() - row.checked_at >= MEMBERSHIP_RECHECK_MS) {
      const { rows } = await this.db().execute<{ member: boolean }>(sql`
        SELECT EXISTS (SELECT 1 FROM team_members m JOIN users u ON u.id = m.user_id JOIN teams t ON t.id = m.team_id
                        WHERE m.user_id = ${row.user_id} AND m.team_id = ${snapshot.team_id} AND u.is_active AND t.deleted_at IS NULL) AS member`);
      if (rows[0]?.member !== true) {
        this.ctx.storage.sql.exec("DELETE FROM sessions WHERE id_hash = ?", idHash);
        return null;
      }
      this.ctx.storage.sql.exec("UPDATE sessions SET checked_at = ? WHERE id_hash = ?", Date.now(), idHash);
    }
    return "member";
  }

  /** A new session: the cookie's value is random and returned once; only its hash is kept. */
  private async newSession(input: { kind: "member" | "share"; userId: string | null; shareTokenId: string | null; route: string; ttlSeconds: number }): Promise<string> {
    const value = randomHex(32);
    const idHash = await sha256Hex(value);
    const now = Date.now();
    this.ctx.storage.sql.exec("DELETE FROM sessions WHERE expires_at <= ?", now);
    this.ctx.storage.sql.exec(
      "INSERT INTO sessions (id_hash, kind, user_id, share_token_id, route, expires_at, checked_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      idHash,
      input.kind,
      input.userId,
      input.shareTokenId,
      input.route,
      now + input.ttlSeconds * 1000,
      now,
    );
    return value;
  }

  // ---------------------------------------------------------------- the snapshot

  /** The held snapshot; for a host never heard of, one database lookup (then remembered as absent for a minute). */
  private async current(hash: string): Promise<HostSnapshot | null> {
    const stored = this.ctx.storage.kv.get<Stored>("state");
    if (stored && !stored.absent) return stored.snapshot;
    if (stored?.absent && Date.now() - stored.checkedAt < ABSENT_RECHECK_MS) return null;
    const { rows } = await this.db().execute<SnapshotRow>(snapshotSelect(sql`e.subdomain_hash = ${hash}`));
    const snapshot = rows[0] ? toSnapshot(rows[0]) : null;
    if (snapshot) this.store(snapshot);
    else this.ctx.storage.kv.put<Stored>("state", { absent: true, checkedAt: Date.now() });
    return snapshot;
  }

  private store(snapshot: HostSnapshot): void {
    const stored = this.ctx.storage.kv.get<Stored>("state");
    if (stored && !stored.absent && stored.snapshot.version > snapshot.version) return;
    this.ctx.storage.transactionSync(() => {
      this.ctx.storage.kv.put<Stored>("state", { absent: false, snapshot });
      if (snapshot.status === "terminated" || snapshot.status === "reaped") {
        this.ctx.storage.sql.exec("DELETE FROM sessions");
        this.ctx.storage.sql.exec("DELETE FROM codes");
      }
    });
  }

  /**
   * At most once a minute while visited: records `last_request_at` and re-reads the snapshot in the same statement.
   * Off the request's path: the visitor does not wait for it.
   */
  private touch(snapshot: HostSnapshot): void {
    const now = Date.now();
    if (this.touching || now - (this.ctx.storage.kv.get<number>("touchedAt") ?? 0) < TOUCH_INTERVAL_MS) return;
    this.ctx.storage.kv.put("touchedAt", now);
    this.touching = (async () => {
      try {
        const { rows } = await this.db().execute<SnapshotRow>(sql`
          WITH touched AS (UPDATE environments SET last_request_at = now() WHERE id = ${snapshot.environment_id} RETURNING id)
          ${snapshotSelect(sql`e.id = ${snapshot.environment_id}`)}`);
        if (rows[0]) this.store(toSnapshot(rows[0]));
      } catch (error) {
        this.logger().warn("could not record a preview's last request", { environment_id: snapshot.environment_id, error: error instanceof Error ? { name: error.name } : {} });
      } finally {
        this.touching = null;
      }
    })();
    this.ctx.waitUntil(this.touching);
  }

  private db(): Db {
    return getDb(getConfig(this.env).DATABASE_URL);
  }

  private logger(): Logger {
    const level = ["debug", "info", "warn", "error"].includes(this.env.LOG_LEVEL) ? (this.env.LOG_LEVEL as LogLevel) : "info";
    return new Logger(level, { component: "preview_host" });
  }
}
