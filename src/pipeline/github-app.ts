import * as z from "zod";
import type { Config } from "../config.ts";
import { base64ToBytes, hmacSha256Hex, timingSafeEqual } from "../lib/crypto.ts";
import { importAppPrivateKey, signAppJwt } from "./github/app-jwt.ts";
import { errorFromResponse, GitHubError, isGitHubError } from "./github/errors.ts";
import { installationObject, repositoryObject, type InstallationInfo, type InstallationRepository } from "./github/installation.ts";
import { fullName, nextLink, repoPath, toRepoRef, type RepoInput, type RepoRef } from "./github/repo.ts";

export { GitHubError, isGitHubError, type GitHubErrorKind } from "./github/errors.ts";
export { toRepoRef, type RepoInput, type RepoRef } from "./github/repo.ts";
export { installationObject, repositoryObject, type InstallationInfo, type InstallationRepository } from "./github/installation.ts";

/**
 * The GitHub App client: App JWT → installation tokens (cached per installation) → the repository calls the preview
 * pipeline needs: read stagely.yaml, mint clone tokens, report deployments, keep one PR comment up to date.
 * Every failure is a classified GitHubError (errors.ts) whose message never carries a token, JWT or key.
 */

export interface GitHubAppOptions {
  /** The App id ("123456") or client id ("Iv1.…"): the JWT's `iss`. */
  appId: string;
  /** PEM, PKCS#8 ("BEGIN PRIVATE KEY") or PKCS#1 ("BEGIN RSA PRIVATE KEY", what GitHub hands out). */
  privateKey: string;
  /** REST API base URL without a trailing slash (https://api.github.com, or GitHub Enterprise's /api/v3). */
  apiUrl: string;
  fetch?: typeof fetch;
  /** Per request; default 10 s (webhooks must be answered within 10 s). */
  timeoutMs?: number;
  /** Clock in ms (tests move it). */
  now?: () => number;
}

export interface InstallationToken {
  token: string;
  /** ISO 8601. */
  expiresAt: string;
}

export interface Deployment {
  id: number;
  ref: string;
  sha: string;
  environment: string;
  createdAt: string;
}

export const deploymentStates = ["in_progress", "success", "failure", "inactive", "error"] as const;
export type DeploymentState = (typeof deploymentStates)[number];

export interface DeploymentStatus {
  id: number;
  state: DeploymentState;
  createdAt: string;
}

export interface CreateDeploymentInput {
  /** Branch, tag or commit SHA (the PR head SHA). */
  ref: string;
  /** e.g. "preview/pr-42". */
  environment: string;
  description?: string;
  /** Free JSON GitHub stores with the deployment (e.g. Stagely ids). */
  payload?: Record<string, unknown>;
}

export interface CreateDeploymentStatusInput {
  state: DeploymentState;
  environment_url?: string;
  log_url?: string;
  description?: string;
}

export interface PullRequestComment {
  id: number;
  htmlUrl: string;
  /** False when an existing comment was updated. */
  created: boolean;
}

/** Installation tokens are reused until this long before they expire. */
export const TOKEN_REFRESH_MARGIN_MS = 5 * 60_000;
/** How long a repository → installation lookup is trusted. */
const INSTALLATION_CACHE_MS = 10 * 60_000;
/** Comments read (100 per page) while looking for the marked one. */
const MAX_COMMENT_PAGES = 30;
/** Repositories read (100 per page) from one installation. */
const MAX_REPOSITORY_PAGES = 100;
/** GitHub's limit on a deployment status description. */
const DESCRIPTION_LIMIT = 140;
const COMMENT_LIMIT = 65_536;
const DEFAULT_TIMEOUT_MS = 10_000;

const installationSchema = z.object({ id: z.number().int().positive() });
const tokenSchema = z.object({ token: z.string().min(1), expires_at: z.string() });
const installationRepositoriesSchema = z.object({ repositories: z.array(repositoryObject) });
const contentSchema = z.union([
  z.array(z.unknown()),
  z.object({ type: z.string(), encoding: z.string().nullish(), content: z.string().nullish() }),
]);
const deploymentSchema = z.object({ id: z.number().int(), ref: z.string(), sha: z.string(), environment: z.string(), created_at: z.string() });
const deploymentStatusSchema = z.object({ id: z.number().int(), state: z.enum(deploymentStates), created_at: z.string() });
const commentSchema = z.object({
  id: z.number().int(),
  html_url: z.string(),
  body: z.string().nullish(),
  user: z.object({ type: z.string() }).nullish(),
});

interface CachedToken {
  token: string;
  expiresAtMs: number;
}

interface Answer {
  response: Response;
  data: unknown;
}

function unexpected(what: string): GitHubError {
  return new GitHubError("transient", `GitHub sent an unexpected answer to ${what}`);
}

function parse<T>(schema: z.ZodType<T>, data: unknown, what: string): T {
  const result = schema.safeParse(data);
  if (!result.success) throw unexpected(what);
  return result.data;
}

function truncate(text: string | undefined, limit: number): string | undefined {
  if (text === undefined) return undefined;
  return text.length > limit ? `${text.slice(0, limit - 1)}…` : text;
}

/** A URL's path for messages, percent-decoded where possible. */
function readablePath(url: string): string {
  const path = new URL(url).pathname;
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

function checkUrl(value: string | undefined, field: string): void {
  if (value === undefined) return;
  if (!URL.canParse(value) || !/^https?:$/.test(new URL(value).protocol)) throw new GitHubError("invalid", `${field} must be an http(s) URL`);
}

export class GitHubApp {
  readonly apiUrl: string;
  private readonly appId: string;
  private readonly privateKey: string;
  private readonly fetchImpl: typeof fetch;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private key: Promise<CryptoKey> | undefined;
  private jwt: { value: string; expiresAtMs: number } | undefined;
  private readonly tokens = new Map<number, Promise<CachedToken>>();
  private readonly installations = new Map<string, { id: number; cachedAtMs: number }>();

  constructor(options: GitHubAppOptions) {
    if (!options.appId || !options.privateKey) {
      throw new GitHubError("misconfigured", "the GitHub App is not configured on this server (GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY)");
    }
    this.appId = options.appId;
    this.privateKey = options.privateKey;
    this.apiUrl = options.apiUrl.replace(/\/+$/, "");
    // Called as a plain function: Workers' fetch must not be invoked as a method of another object.
    this.fetchImpl = options.fetch ?? ((input, init) => fetch(input, init));
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.now = options.now ?? Date.now;
  }

  /** The App's JWT (RS256, iat 60 s back, 10 minutes of validity), reused until a minute before it expires. */
  async appJwt(): Promise<string> {
    const now = this.now();
    if (this.jwt && now < this.jwt.expiresAtMs - 60_000) return this.jwt.value;
    this.key ??= importAppPrivateKey(this.privateKey);
    const signed = await signAppJwt(await this.key, this.appId, now);
    this.jwt = { value: signed.jwt, expiresAtMs: signed.expiresAtMs };
    return signed.jwt;
  }

  /** The installation covering a repository: the one given (webhook payload), else GET /repos/{o}/{r}/installation. */
  async installationId(repo: RepoInput): Promise<number> {
    const ref = toRepoRef(repo);
    if (ref.installationId !== undefined) return ref.installationId;
    const key = fullName(ref).toLowerCase();
    const cached = this.installations.get(key);
    if (cached && this.now() - cached.cachedAtMs < INSTALLATION_CACHE_MS) return cached.id;
    let answer: Answer;
    try {
      answer = await this.asApp("GET", `/repos/${repoPath(ref)}/installation`);
    } catch (error) {
      if (!isGitHubError(error, "not_found")) throw error;
      throw new GitHubError("not_found", `the GitHub App is not installed on ${fullName(ref)} (or cannot see it)`, { status: error.status });
    }
    const { id } = parse(installationSchema, answer.data, `GET /repos/${fullName(ref)}/installation`);
    this.installations.set(key, { id, cachedAtMs: this.now() });
    return id;
  }

  /** GET /app/installations/{id}: the installation's account, repository selection, permissions and suspension. */
  async getInstallation(installationId: number): Promise<InstallationInfo> {
    if (!Number.isSafeInteger(installationId) || installationId <= 0) throw new GitHubError("invalid", "an installation id must be a positive integer");
    const path = `/app/installations/${installationId}`;
    const answer = await this.asApp("GET", path);
    return parse(installationObject, answer.data, `GET ${path}`);
  }

  /** Every repository the installation can access (GET /installation/repositories, page by page). */
  async installationRepositories(installationId: number): Promise<InstallationRepository[]> {
    const what = "GET /installation/repositories";
    const repositories: InstallationRepository[] = [];
    let url: string | undefined = `${this.apiUrl}/installation/repositories?per_page=100`;
    for (let page = 0; url !== undefined; page++) {
      if (page === MAX_REPOSITORY_PAGES) {
        throw new GitHubError("invalid", `the installation can access more than ${MAX_REPOSITORY_PAGES * 100} repositories; select fewer on GitHub`);
      }
      const answer = await this.asInstallationId(installationId, "GET", url);
      repositories.push(...parse(installationRepositoriesSchema, answer.data, what).repositories);
      url = this.sameOrigin(nextLink(answer.response.headers.get("link")), what);
    }
    return repositories;
  }

  /** An installation token with the installation's permissions, cached until 5 minutes before it expires. */
  async installationToken(installationId: number): Promise<InstallationToken> {
    const token = await this.cachedToken(installationId);
    return { token: token.token, expiresAt: new Date(token.expiresAtMs).toISOString() };
  }

  /**
   * A token for `git clone https://x-access-token:<token>@github.com/<owner>/<name>.git`: scoped to this one repository
   * with contents:read only, and minted on every call (never cached) so a builder that takes minutes to boot still gets
   * close to GitHub's full hour.
   */
  async cloneToken(repo: RepoInput): Promise<InstallationToken> {
    const ref = toRepoRef(repo);
    const installationId = await this.installationId(ref);
    const token = await this.mintToken(installationId, { repositories: [ref.name], permissions: { contents: "read" } });
    return { token: token.token, expiresAt: new Date(token.expiresAtMs).toISOString() };
  }

  /** A file's text at a ref (branch, tag or SHA; "" for the default branch), or null when there is no such file. */
  async getFileContent(repo: RepoInput, path: string, ref: string): Promise<string | null> {
    const target = toRepoRef(repo);
    const segments = typeof path === "string" ? path.split("/").filter((s) => s !== "" && s !== ".") : [];
    if (segments.length === 0 || segments.includes("..")) throw new GitHubError("invalid", "a file path inside the repository is required");
    const query = ref ? `?ref=${encodeURIComponent(ref)}` : "";
    const url = `/repos/${repoPath(target)}/contents/${segments.map(encodeURIComponent).join("/")}${query}`;
    const what = `GET /repos/${fullName(target)}/contents/${segments.join("/")}`;
    const answer = await this.asInstallation(target, "GET", url, undefined, { notFoundIsNull: true });
    if (!answer) return null;
    const file = parse(contentSchema, answer.data, what);
    const shown = `${segments.join("/")} in ${fullName(target)}`;
    if (Array.isArray(file)) throw new GitHubError("invalid", `${shown} is a directory, not a file`);
    if (file.type !== "file") throw new GitHubError("invalid", `${shown} is a ${file.type}, not a file`);
    if (file.encoding !== "base64" || typeof file.content !== "string") {
      throw new GitHubError("invalid", `${shown} is too large to read through GitHub's contents API (over 1 MB)`);
    }
    try {
      return new TextDecoder().decode(base64ToBytes(file.content.replace(/\s+/g, "")));
    } catch {
      throw unexpected(what);
    }
  }

  /** POST /repos/{o}/{r}/deployments: a transient, non-production deployment that never auto-merges or waits for checks. */
  async createDeployment(repo: RepoInput, input: CreateDeploymentInput): Promise<Deployment> {
    const target = toRepoRef(repo);
    if (!input.ref || !input.environment) throw new GitHubError("invalid", "a deployment needs a ref and an environment");
    const body = {
      ref: input.ref,
      environment: input.environment,
      description: truncate(input.description, DESCRIPTION_LIMIT),
      payload: input.payload ?? {},
      auto_merge: false,
      required_contexts: [],
      transient_environment: true,
      production_environment: false,
    };
    const answer = await this.asInstallation(target, "POST", `/repos/${repoPath(target)}/deployments`, body);
    const deployment = parse(deploymentSchema, answer.data, `POST /repos/${fullName(target)}/deployments`);
    return { id: deployment.id, ref: deployment.ref, sha: deployment.sha, environment: deployment.environment, createdAt: deployment.created_at };
  }

  /** POST /repos/{o}/{r}/deployments/{id}/statuses. */
  async createDeploymentStatus(repo: RepoInput, deploymentId: number, input: CreateDeploymentStatusInput): Promise<DeploymentStatus> {
    const target = toRepoRef(repo);
    if (!Number.isSafeInteger(deploymentId) || deploymentId <= 0) throw new GitHubError("invalid", "a deployment id must be a positive integer");
    if (!deploymentStates.includes(input.state)) throw new GitHubError("invalid", `a deployment state must be one of ${deploymentStates.join(", ")}`);
    checkUrl(input.environment_url, "environment_url");
    checkUrl(input.log_url, "log_url");
    const body = {
      state: input.state,
      environment_url: input.environment_url,
      log_url: input.log_url,
      description: truncate(input.description, DESCRIPTION_LIMIT),
    };
    const path = `/repos/${repoPath(target)}/deployments/${deploymentId}/statuses`;
    const answer = await this.asInstallation(target, "POST", path, body);
    const status = parse(deploymentStatusSchema, answer.data, `POST /repos/${fullName(target)}/deployments/${deploymentId}/statuses`);
    return { id: status.id, state: status.state, createdAt: status.created_at };
  }

  /**
   * One comment per pull request, updated in place: the comment carrying `marker` (an HTML comment such as
   * `<!-- stagely:preview -->`, added to the body when missing) and written by a bot is edited; otherwise a new one is
   * posted. Pass the id returned last time as `existingCommentId` to skip the search (a deleted comment falls back to it).
   */
  async upsertPullRequestComment(
    repo: RepoInput,
    prNumber: number,
    body: string,
    marker: string,
    options: { existingCommentId?: number } = {},
  ): Promise<PullRequestComment> {
    const target = toRepoRef(repo);
    if (!Number.isSafeInteger(prNumber) || prNumber <= 0) throw new GitHubError("invalid", "a pull request number must be a positive integer");
    if (typeof marker !== "string" || !/^<!--[\s\S]*\S[\s\S]*-->$/.test(marker)) {
      throw new GitHubError("invalid", "the comment marker must be an HTML comment such as <!-- stagely:preview -->");
    }
    if (typeof body !== "string") throw new GitHubError("invalid", "a comment body must be text");
    const text = body.includes(marker) ? body : `${marker}\n${body}`;
    if (text.length > COMMENT_LIMIT) throw new GitHubError("invalid", `a comment may have at most ${COMMENT_LIMIT} characters`);

    const known = options.existingCommentId;
    if (known !== undefined && Number.isSafeInteger(known) && known > 0) {
      const updated = await this.updateComment(target, known, text);
      if (updated) return updated;
    }
    const existing = await this.findMarkedComment(target, prNumber, marker);
    if (existing !== undefined) {
      const updated = await this.updateComment(target, existing, text);
      if (updated) return updated;
    }
    const path = `/repos/${repoPath(target)}/issues/${prNumber}/comments`;
    const answer = await this.asInstallation(target, "POST", path, { body: text });
    const comment = parse(commentSchema, answer.data, `POST /repos/${fullName(target)}/issues/${prNumber}/comments`);
    return { id: comment.id, htmlUrl: comment.html_url, created: true };
  }

  /** PATCH a comment; null when it no longer exists. */
  private async updateComment(target: RepoRef, commentId: number, text: string): Promise<PullRequestComment | null> {
    const path = `/repos/${repoPath(target)}/issues/comments/${commentId}`;
    const answer = await this.asInstallation(target, "PATCH", path, { body: text }, { notFoundIsNull: true });
    if (!answer) return null;
    const comment = parse(commentSchema, answer.data, `PATCH /repos/${fullName(target)}/issues/comments/${commentId}`);
    return { id: comment.id, htmlUrl: comment.html_url, created: false };
  }

  /** The oldest bot comment containing the marker, following the Link header page by page. */
  private async findMarkedComment(target: RepoRef, prNumber: number, marker: string): Promise<number | undefined> {
    const what = `GET /repos/${fullName(target)}/issues/${prNumber}/comments`;
    let url: string | undefined = `${this.apiUrl}/repos/${repoPath(target)}/issues/${prNumber}/comments?per_page=100`;
    for (let page = 0; url !== undefined && page < MAX_COMMENT_PAGES; page++) {
      const answer = await this.asInstallation(target, "GET", url, undefined, { notFoundIsNull: true });
      if (!answer) return undefined;
      const comments = parse(z.array(commentSchema), answer.data, what);
      const found = comments.find((c) => c.user?.type === "Bot" && c.body?.includes(marker));
      if (found) return found.id;
      url = this.sameOrigin(nextLink(answer.response.headers.get("link")), what);
    }
    return undefined;
  }

  /** A pagination link, refused when it leads away from the API's host (a token must never follow it there). */
  private sameOrigin(url: string | undefined, what: string): string | undefined {
    if (url !== undefined && (!URL.canParse(url) || new URL(url).origin !== new URL(this.apiUrl).origin)) {
      throw new GitHubError("transient", `GitHub sent a pagination link for ${what} to another host`);
    }
    return url;
  }

  // ---- transport ----

  private async send(method: string, pathOrUrl: string, authorization: string, body?: unknown): Promise<Answer> {
    const url = /^https?:\/\//.test(pathOrUrl) ? pathOrUrl : `${this.apiUrl}${pathOrUrl}`;
    const what = `${method} ${readablePath(url)}`;
    const headers: Record<string, string> = {
      Accept: "application/vnd.github+json",
      "X-GitHub-Api-Version": "2022-11-28",
      "User-Agent": "stagely",
      Authorization: authorization,
    };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
      throw new GitHubError("transient", timedOut ? `GitHub did not answer ${what} within ${this.timeoutMs / 1000} s` : `could not reach GitHub for ${what}`);
    }
    let text: string;
    try {
      text = await response.text();
    } catch {
      throw new GitHubError("transient", `GitHub's answer to ${what} could not be read`, { status: response.status });
    }
    let data: unknown;
    try {
      data = text ? JSON.parse(text) : undefined;
    } catch {
      if (response.ok) throw unexpected(what);
    }
    if (!response.ok) throw errorFromResponse(response, data, what, this.now());
    return { response, data };
  }

  /** A call authenticated as the App itself (JWT). A 401 means the App's id, key or the clock is wrong. */
  private async asApp(method: string, path: string, body?: unknown): Promise<Answer> {
    try {
      return await this.send(method, path, `Bearer ${await this.appJwt()}`, body);
    } catch (error) {
      if (isGitHubError(error) && error.status === 401) {
        throw new GitHubError("unauthorized", `${error.message} (check GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY and the server clock)`, { status: 401 });
      }
      throw error;
    }
  }

  /**
   * A call authenticated as the installation covering `target`. A 401 (token revoked or expired early) drops the
   * cached token and tries once more with a new one. With notFoundIsNull a 404 of this call answers null.
   */
  private async asInstallation(target: RepoRef, method: string, path: string, body?: unknown, options?: { notFoundIsNull?: false }): Promise<Answer>;
  private async asInstallation(target: RepoRef, method: string, path: string, body: unknown, options: { notFoundIsNull: true }): Promise<Answer | null>;
  private async asInstallation(target: RepoRef, method: string, path: string, body?: unknown, options: { notFoundIsNull?: boolean } = {}): Promise<Answer | null> {
    const installationId = await this.installationId(target);
    // The App was uninstalled (or reinstalled under a new id) since the lookup was cached: look it up again next time.
    return this.asInstallationId(installationId, method, path, body, options, () => this.installations.delete(fullName(target).toLowerCase()));
  }

  private async asInstallationId(installationId: number, method: string, path: string, body?: unknown): Promise<Answer>;
  private async asInstallationId(
    installationId: number,
    method: string,
    path: string,
    body: unknown,
    options: { notFoundIsNull?: boolean },
    forgetInstallation: () => void,
  ): Promise<Answer | null>;
  private async asInstallationId(
    installationId: number,
    method: string,
    path: string,
    body?: unknown,
    options: { notFoundIsNull?: boolean } = {},
    forgetInstallation?: () => void,
  ): Promise<Answer | null> {
    for (let attempt = 1; ; attempt++) {
      let token: CachedToken;
      try {
        token = await this.cachedToken(installationId);
      } catch (error) {
        if (isGitHubError(error, "not_found")) forgetInstallation?.();
        throw error;
      }
      try {
        return await this.send(method, path, `Bearer ${token.token}`, body);
      } catch (error) {
        if (options.notFoundIsNull && isGitHubError(error, "not_found")) return null;
        if (attempt === 1 && isGitHubError(error) && error.status === 401) {
          this.tokens.delete(installationId);
          continue;
        }
        throw error;
      }
    }
  }

  private async cachedToken(installationId: number): Promise<CachedToken> {
    const pending = this.tokens.get(installationId);
    if (pending) {
      // A failure of the shared request is this caller's failure too.
      const token = await pending;
      if (this.now() < token.expiresAtMs - TOKEN_REFRESH_MARGIN_MS) return token;
      if (this.tokens.get(installationId) === pending) this.tokens.delete(installationId);
      return this.cachedToken(installationId);
    }
    const minted = this.mintToken(installationId);
    this.tokens.set(installationId, minted);
    minted.catch(() => {
      if (this.tokens.get(installationId) === minted) this.tokens.delete(installationId);
    });
    return minted;
  }

  private async mintToken(installationId: number, scope?: { repositories: string[]; permissions: Record<string, string> }): Promise<CachedToken> {
    if (!Number.isSafeInteger(installationId) || installationId <= 0) throw new GitHubError("invalid", "an installation id must be a positive integer");
    const path = `/app/installations/${installationId}/access_tokens`;
    const answer = await this.asApp("POST", path, scope);
    const minted = parse(tokenSchema, answer.data, `POST ${path}`);
    const expiresAtMs = Date.parse(minted.expires_at);
    if (Number.isNaN(expiresAtMs)) throw unexpected(`POST ${path}`);
    return { token: minted.token, expiresAtMs };
  }
}

const apps = new WeakMap<object, GitHubApp>();

/** The App client for a parsed config, built once per config (so its token cache lives as long as the isolate). */
export function githubAppFromConfig(config: Pick<Config, "GITHUB_APP_ID" | "GITHUB_APP_PRIVATE_KEY" | "GITHUB_API_URL">): GitHubApp {
  let app = apps.get(config);
  if (!app) {
    app = new GitHubApp({ appId: config.GITHUB_APP_ID ?? "", privateKey: config.GITHUB_APP_PRIVATE_KEY ?? "", apiUrl: config.GITHUB_API_URL });
    apps.set(config, app);
  }
  return app;
}

/**
 * Checks `X-Hub-Signature-256` (`sha256=<hex>`) against the HMAC-SHA256 of the raw body, in constant time.
 * False for a missing or malformed header and for an empty secret.
 */
export async function verifyWebhookSignature(
  secret: string,
  rawBody: ArrayBuffer | Uint8Array | string,
  header: string | null | undefined,
): Promise<boolean> {
  if (typeof secret !== "string" || secret === "" || typeof header !== "string") return false;
  const match = /^sha256=([0-9a-fA-F]{64})$/.exec(header.trim());
  if (!match) return false;
  const body = typeof rawBody === "string" ? rawBody : new Uint8Array(rawBody);
  const expected = await hmacSha256Hex(secret, body);
  return timingSafeEqual(expected, match[1]!.toLowerCase());
}
