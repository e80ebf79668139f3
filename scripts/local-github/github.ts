import { execFile } from "node:child_process";
import { createHash, createHmac, generateKeyPairSync, randomBytes, randomUUID, verify, type KeyObject } from "node:crypto";
import { existsSync } from "node:fs";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { join } from "node:path";
import { promisify } from "node:util";
import { gitHttpHandler } from "./git-server.ts";
import { json, listen, readBody } from "./http.ts";
import { renderPage, type DeploymentStatusView, type PageData } from "./pages.ts";
import { bareRepository } from "./repositories.ts";

const execFileAsync = promisify(execFile);

/**
 * The local GitHub: GitHub as the OAuth web flow, the REST API, git and a GitHub App see it. The tests and benchmarks
 * start it as a fake (in-memory files, no webhooks); `npm run dev` and `npm run demo` start it with a folder of real
 * git repositories and a webhook URL, so the whole pull request → preview flow runs with no account.
 *
 * OAuth (sign-in, and the user authorization GitHub adds to an App's installation): like the real one, the token
 * endpoint answers 200 with an `error` field for a wrong client secret or a bad/reused code, and the API answers 401
 * "Bad credentials". A user token reads GET /user, GET /user/emails and GET /user/installations (the App's
 * installations this user can access, paginated).
 *   POST /_fake/oauth/grant {user, emails, redirect_uri, installations?: [id]}  plays the user approving the app
 *        (`installations`: installations this GitHub user can access from now on) → {code}
 *   Browser side (a real browser follows the redirects): POST /_fake/oauth/approver {user, emails} chooses who is signed
 *   in to GitHub; GET /login/oauth/authorize?client_id&redirect_uri&state then approves as them and redirects back to
 *   redirect_uri with a code and the state, as GitHub does for an app the user already authorized.
 *
 * GitHub App: App endpoints need `Authorization: Bearer <JWT>` signed RS256 with the App's key (GITHUB_APP_ID, the key
 * from githubAppPrivateKey()), checked like GitHub does (signature, iss, iat not in the future, exp in the future and at
 * most 10 minutes ahead). Repository endpoints need an installation token (`Bearer` or `token`) of an installation
 * that covers the repository; a token minted for some repositories or permissions is held to them.
 *   GET  /app · GET /app/installations/{id} · GET /repos/{o}/{r}/installation
 *   POST /app/installations/{id}/access_tokens {repositories?|repository_ids?, permissions?}  (403 when suspended)
 *   GET  /installation/repositories?per_page=&page=  (installation token; Link header)
 *   GET  /repos/{o}/{r}/contents/{path}?ref=   (ref defaults to main; files over 1 MB answer encoding "none")
 *   POST /repos/{o}/{r}/deployments             (each ref has a pending "ci/fake" status: leaving required_contexts
 *                                               out answers 409, as GitHub does while checks are pending)
 *   POST /repos/{o}/{r}/deployments/{id}/statuses
 *   GET  /repos/{o}/{r}/issues/{n}/comments?per_page=&page=  (Link header) · POST same · PATCH /repos/{o}/{r}/issues/comments/{id}
 *
 * With `gitRoot` (bare repositories `<gitRoot>/<owner>/<name>.git`): `git clone <url>/<owner>/<name>.git` with
 * `x-access-token:<installation token>` as Basic credentials (a token that may not read the repository gets 404), and
 * the contents API and deployments read those repositories at any branch or commit.
 * With `webhook`: the App's webhooks, signed with its secret, for pull requests opened/synchronized/closed through the
 * control routes below and for repositories added to an installation.
 * Browser pages: GET / (repositories), /<owner>/<name> (pull requests), /<owner>/<name>/pull/<n> (what GitHub
 * would show on the pull request: deployments with their statuses and links, comments, webhook deliveries).
 *
 * Test control (tests use their own repository names, so files running at the same time never meet):
 *   GET    /_fake/app/private-key                        → {app_id, private_key} (PKCS#1 PEM)
 *   POST   /_fake/app/installations {repositories: ["o/r"], permissions?, token_lifetime_seconds?, account_type?}
 *          → {id, account, repositories: [{id, full_name}]} (the account is the first repository's owner)
 *   POST   /_fake/app/installations/{id}/repositories {full_name}  adds a repository (webhook installation_repositories.added)
 *   GET    /_fake/app/installations/{id}                 → {id, repositories, tokens_issued, token_requests}
 *   PATCH  /_fake/app/installations/{id} {suspended?, repositories?}  suspends/unsuspends, or sets its repositories
 *   DELETE /_fake/app/installations/{id}                 uninstalls the App (the installation is gone)
 *   DELETE /_fake/app/installations/{id}/tokens          revokes every token of the installation
 *   POST   /_fake/repos/{o}/{r}/files {ref?, path, content}     a file at a ref (default main)
 *   GET    /_fake/repos/{o}/{r}/deployments              → [{...deployment, request, statuses}]
 *   GET    /_fake/repos/{o}/{r}/issues/{n}/comments      → every comment of the issue
 *   POST   /_fake/repos/{o}/{r}/issues/{n}/comments {body, user?: {login, type}}  a comment by someone else
 *   DELETE /_fake/repos/{o}/{r}/issues/comments/{id}
 *   POST   /_fake/repos/{o}/{r}/import {path, branch}     fetches a branch of a local git repository into the served one
 *   GET    /_fake/repos/{o}/{r}/pulls                     → every pull request
 *   POST   /_fake/repos/{o}/{r}/pulls {head, number?, title?, sender?}  opens (or reopens) the pull request of branch `head`
 *          at its current commit → {number, head_sha, state, html_url, delivery}   (webhook pull_request.opened)
 *   POST   /_fake/repos/{o}/{r}/pulls/{n}/synchronize {sender?}  its branch moved (webhook pull_request.synchronize)
 *   POST   /_fake/repos/{o}/{r}/pulls/{n}/close {sender?}        (webhook pull_request.closed)
 *   POST   /_fake/failures {match, status?, headers?, message?, mode?: "error"|"reset"|"hang", times?}
 *          the next `times` (1) API requests whose "METHOD /path" starts with `match` fail
 *   GET    /_fake/requests?match=<prefix>                → {requests: [{method, path, auth: "jwt"|"token"|"none"}]}
 */
export const GITHUB_CLIENT_ID = "Iv1.stagelytest00001";
export const GITHUB_CLIENT_SECRET = "fake-github-client-secret-0123456789";
export const GITHUB_APP_ID = "424242";
export const GITHUB_APP_SLUG = "stagely-test";
/** A webhook secret tests may configure (GITHUB_WEBHOOK_SECRET); npm run dev starts the local GitHub with a secret of its own. */
export const GITHUB_WEBHOOK_SECRET = "fake-github-webhook-secret-0123456789";

const DOCS = "https://docs.github.com/rest";

interface AppKey {
  privateKeyPem: string;
  publicKey: KeyObject;
}

/**
 * The App's key pair, generated once per process. It lives on globalThis because vitest.config.ts and the global
 * setup load this module separately: both must see the same key.
 */
function appKey(): AppKey {
  const slot = Symbol.for("stagely.test.fake-github-app-key");
  const holder = globalThis as unknown as Record<symbol, AppKey | undefined>;
  let key = holder[slot];
  if (!key) {
    const pair = generateKeyPairSync("rsa", { modulusLength: 2048 });
    key = { privateKeyPem: pair.privateKey.export({ type: "pkcs1", format: "pem" }) as string, publicKey: pair.publicKey };
    holder[slot] = key;
  }
  return key;
}

/** The App's private key as GitHub hands it out (PKCS#1 PEM), for GITHUB_APP_PRIVATE_KEY in tests. */
export function githubAppPrivateKey(): string {
  return appKey().privateKeyPem;
}

// ---- OAuth ----

export interface GitHubUser {
  id: number;
  login: string;
  name: string | null;
  avatar_url: string | null;
}
export interface Grant {
  user: GitHubUser;
  emails: { email: string; primary: boolean; verified: boolean; visibility: string | null }[];
  redirectUri?: string;
  used: boolean;
}

// ---- App state ----

type Level = "read" | "write" | "admin";
const LEVELS: Record<string, number> = { read: 1, write: 2, admin: 3 };
const DEFAULT_PERMISSIONS: Record<string, Level> = { contents: "read", metadata: "read", deployments: "write", issues: "write", pull_requests: "write" };

interface Installation {
  id: number;
  account: string;
  accountType: "Organization" | "User";
  suspendedAt: string | null;
  repositories: Set<string>;
  permissions: Record<string, string>;
  tokenLifetimeSeconds: number;
  tokenRequests: unknown[];
  createdAt: string;
}

interface Token {
  installationId: number;
  expiresAt: number;
  repositories: Set<string> | undefined;
  permissions: Record<string, string>;
  revoked: boolean;
}

interface DeploymentRecord {
  id: number;
  ref: string;
  sha: string;
  environment: string;
  description: string | null;
  payload: unknown;
  transientEnvironment: boolean;
  productionEnvironment: boolean;
  createdAt: string;
  request: unknown;
  statuses: Record<string, unknown>[];
}

interface CommentRecord {
  id: number;
  issue: number;
  body: string;
  user: { login: string; id: number; type: string };
  viaApp: boolean;
  createdAt: string;
  updatedAt: string;
}

interface PullRecord {
  number: number;
  title: string;
  headRef: string;
  headSha: string;
  /** Every head commit it had, oldest first (its deployments are found by them). */
  shas: string[];
  state: "open" | "closed";
  updatedAt: string;
}

export interface Delivery {
  event: string;
  action: string;
  status: number;
  body: string;
  deliveredAt: string;
}

interface Repo {
  owner: string;
  name: string;
  id: number;
  files: Map<string, Buffer>;
  deployments: DeploymentRecord[];
  comments: CommentRecord[];
  pulls: PullRecord[];
  deliveries: Delivery[];
}

export interface LocalGitHubOptions {
  /** Port on 127.0.0.1 (default: a free one). */
  port?: number;
  /** Bare repositories `<gitRoot>/<owner>/<name>.git`, served to `git clone` and read by the contents API. */
  gitRoot?: string;
  /** Where the App's webhooks go, signed with `secret` (as the App's webhook URL and secret on GitHub). */
  webhook?: { url: string; secret: string };
  /** Installations that exist from the start, with fixed ids (as a database seeded for them expects). */
  installations?: { id: number; account: string; repositories: { id: number; fullName: string }[] }[];
  /** Who is signed in to this GitHub in the browser from the start (else: POST /_fake/oauth/approver). */
  approver?: { user: GitHubUser; emails: Grant["emails"] };
}

interface Failure {
  match: string;
  status: number;
  headers: Record<string, string>;
  message: string;
  mode: "error" | "reset" | "hang";
  times: number;
}

interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

const reply = (status: number, body?: unknown, headers?: Record<string, string>): Reply => ({ status, body, headers });
const notFound = (docs = DOCS) => reply(404, { message: "Not Found", documentation_url: docs, status: "404" });
const unauthorized = (message: string) => reply(401, { message, documentation_url: DOCS, status: "401" });
const forbidden = () => reply(403, { message: "Resource not accessible by integration", documentation_url: DOCS, status: "403" });
const validationFailed = (message: string, errors: unknown[] = []) => reply(422, { message, errors, documentation_url: DOCS, status: "422" });

function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function parseJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function blobSha(content: Buffer): string {
  return createHash("sha1").update(`blob ${content.length}\0`).update(content).digest("hex");
}

const botUser = { login: `${GITHUB_APP_SLUG}[bot]`, id: 9_000_001, type: "Bot" };

/** GitHub's page-based pagination: `per_page` (default 30, at most 100), `page`, and a Link header. */
function paged<T>(all: T[], url: URL, base: string): { items: T[]; headers: Record<string, string> } {
  const perPage = Math.min(100, Math.max(1, Number(url.searchParams.get("per_page") ?? 30) || 30));
  const page = Math.max(1, Number(url.searchParams.get("page") ?? 1) || 1);
  const last = Math.max(1, Math.ceil(all.length / perPage));
  const link = (n: number) => `<${base}${url.pathname}?per_page=${perPage}&page=${n}>`;
  const links: string[] = [];
  if (page > 1) links.push(`${link(page - 1)}; rel="prev"`);
  if (page < last) links.push(`${link(page + 1)}; rel="next"`, `${link(last)}; rel="last"`);
  if (page > 1) links.push(`${link(1)}; rel="first"`);
  return { items: all.slice((page - 1) * perPage, page * perPage), headers: links.length ? { link: links.join(", ") } : {} };
}

function createAppApi(options: LocalGitHubOptions) {
  const installations = new Map<number, Installation>();
  const tokens = new Map<string, Token>();
  const repos = new Map<string, Repo>();
  const failures: Failure[] = [];
  const userInstallations = new Map<number, Set<number>>();
  const requests: { method: string; path: string; auth: string }[] = [];
  let nextInstallationId = 70_000_001;
  let nextRepoId = 500_001;
  let nextDeploymentId = 1_900_000_001;
  let nextStatusId = 2_900_000_001;
  let nextCommentId = 3_900_000_001;
  const appJson = {
    id: Number(GITHUB_APP_ID),
    slug: GITHUB_APP_SLUG,
    client_id: GITHUB_CLIENT_ID,
    node_id: "A_kwDOStagely",
    name: "Stagely (test)",
    description: "Preview environments",
    external_url: "https://stagely.test",
    html_url: `https://github.com/apps/${GITHUB_APP_SLUG}`,
    owner: { login: "stagely", id: 1, type: "Organization" },
    permissions: DEFAULT_PERMISSIONS,
    events: ["pull_request", "push"],
    created_at: "2026-01-01T00:00:00Z",
    updated_at: "2026-01-01T00:00:00Z",
  };

  const keyOf = (owner: string, name: string) => `${owner}/${name}`.toLowerCase();

  function repoFor(owner: string, name: string, id?: number): Repo {
    const key = keyOf(owner, name);
    let repo = repos.get(key);
    if (!repo) {
      repo = { owner, name, id: id ?? nextRepoId++, files: new Map(), deployments: [], comments: [], pulls: [], deliveries: [] };
      repos.set(key, repo);
    }
    return repo;
  }

  for (const seeded of options.installations ?? []) {
    for (const r of seeded.repositories) repoFor(r.fullName.split("/")[0]!, r.fullName.split("/")[1]!, r.id);
    installations.set(seeded.id, {
      id: seeded.id,
      account: seeded.account,
      accountType: "Organization",
      suspendedAt: null,
      repositories: new Set(seeded.repositories.map((r) => r.fullName.toLowerCase())),
      permissions: { ...DEFAULT_PERMISSIONS },
      tokenLifetimeSeconds: 3600,
      tokenRequests: [],
      createdAt: isoSeconds(Date.now()),
    });
  }

  /** The bare repository that serves `repo` (null: its files are the in-memory ones tests set). */
  function gitDirOf(repo: Repo): string | null {
    if (!options.gitRoot) return null;
    const dir = join(options.gitRoot, repo.owner, `${repo.name}.git`);
    return existsSync(dir) ? dir : null;
  }

  async function git(dir: string, args: string[]): Promise<Buffer> {
    const { stdout } = await execFileAsync("git", ["--git-dir", dir, ...args], { encoding: "buffer", maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  }

  /** The commit a branch, tag or commit id names in a served repository; null when it names none. */
  async function resolveCommit(dir: string, ref: string): Promise<string | null> {
    if (ref.startsWith("-")) return null;
    return git(dir, ["rev-parse", "--verify", "--quiet", `${ref}^{commit}`]).then((out) => out.toString("utf8").trim(), () => null);
  }

  /** May this installation token clone the repository (contents: read, as GitHub requires)? */
  function mayClone(tokenValue: string | null, fullName: string): boolean {
    const repo = repos.get(fullName.toLowerCase());
    if (!tokenValue || !repo) return false;
    return checkToken(`token ${tokenValue}`, repo, "contents", "read") === undefined;
  }

  /** Signs and sends one webhook as GitHub does; remembered on the repository's page. Null without a webhook URL. */
  async function deliver(repo: Repo, event: string, payload: { action: string } & Record<string, unknown>): Promise<Delivery | null> {
    if (!options.webhook) return null;
    const body = JSON.stringify(payload);
    const signature = `sha256=${createHmac("sha256", options.webhook.secret).update(body).digest("hex")}`;
    const delivery: Delivery = { event, action: payload.action, status: 0, body: "", deliveredAt: isoSeconds(Date.now()) };
    try {
      const response = await fetch(options.webhook.url, {
        method: "POST",
        headers: { "content-type": "application/json", "user-agent": "GitHub-Hookshot/local", "x-github-event": event, "x-github-delivery": randomUUID(), "x-hub-signature-256": signature },
        body,
        signal: AbortSignal.timeout(10_000),
      });
      delivery.status = response.status;
      delivery.body = (await response.text()).slice(0, 2000);
    } catch (error) {
      delivery.body = `could not deliver to ${options.webhook.url}: ${error instanceof Error ? error.message : String(error)}`;
    }
    repo.deliveries.push(delivery);
    return delivery;
  }

  function senderOf(body: unknown) {
    const login = isObject(body) && typeof body.sender === "string" && body.sender ? body.sender : "octocat";
    return { login, id: 583231, type: "User" };
  }

  function pullJson(repo: Repo, pull: PullRecord, base: string) {
    const full = `${repo.owner}/${repo.name}`;
    return {
      number: pull.number,
      state: pull.state,
      title: pull.title,
      html_url: `${base}/${full}/pull/${pull.number}`,
      updated_at: pull.updatedAt,
      head: { sha: pull.headSha, ref: pull.headRef, repo: { full_name: full } },
      base: { ref: "main", repo: { full_name: full } },
    };
  }

  async function pullRequestEvent(repo: Repo, pull: PullRecord, action: string, body: unknown, base: string): Promise<Reply> {
    pull.updatedAt = new Date().toISOString();
    const installation = installationOf(repo.owner, repo.name);
    const delivery = await deliver(repo, "pull_request", {
      action,
      number: pull.number,
      pull_request: pullJson(repo, pull, base),
      repository: repositoryJson(keyOf(repo.owner, repo.name), base),
      ...(installation ? { installation: { id: installation.id } } : {}),
      sender: senderOf(body),
    });
    return reply(200, { ...pullJson(repo, pull, base), head_sha: pull.headSha, delivery });
  }

  /** The control routes of pull requests and imports (see the module comment). */
  async function pulls(method: string, rest: string, repo: Repo, body: unknown, base: string): Promise<Reply | undefined> {
    const dir = gitDirOf(repo);
    if (method === "POST" && rest === "import") {
      if (!options.gitRoot) return reply(400, { message: "this local GitHub serves no git repositories (no gitRoot)" });
      if (!isObject(body) || typeof body.path !== "string" || typeof body.branch !== "string" || !/^[^\s~^:?*[\\]+$/.test(body.branch) || body.branch.startsWith("-")) {
        return reply(400, { message: "an import needs path (a local git repository) and branch" });
      }
      const target = bareRepository(options.gitRoot, `${repo.owner}/${repo.name}`);
      try {
        await git(target, ["fetch", "--quiet", "--force", "--", body.path, `refs/heads/${body.branch}:refs/heads/${body.branch}`]);
      } catch (error) {
        const stderr = (error as { stderr?: Buffer }).stderr?.toString("utf8").trim();
        return reply(422, { message: `could not fetch branch ${body.branch} from ${body.path}: ${stderr || String(error)}` });
      }
      return reply(200, { branch: body.branch, head_sha: await resolveCommit(target, `refs/heads/${body.branch}`) });
    }
    if (method === "GET" && rest === "pulls") return reply(200, repo.pulls.map((p) => pullJson(repo, p, base)));
    if (method === "POST" && rest === "pulls") {
      if (!isObject(body) || typeof body.head !== "string") return reply(400, { message: "a pull request needs head (a branch)" });
      const number = body.number === undefined ? undefined : Number(body.number);
      if (number !== undefined && (!Number.isInteger(number) || number < 1 || repo.pulls.some((p) => p.number === number && p.headRef !== body.head))) {
        return reply(422, { message: `number: ${String(body.number)} is not a whole number above 0, or another branch's pull request has it` });
      }
      const headSha = dir ? await resolveCommit(dir, `refs/heads/${body.head}`) : null;
      if (!headSha) return validationFailed("Validation Failed", [{ resource: "PullRequest", field: "head", code: "invalid", message: `branch ${body.head} does not exist` }]);
      const existing = repo.pulls.find((p) => p.headRef === body.head);
      if (existing?.state === "open") return validationFailed(`A pull request already exists for ${repo.owner}:${body.head}.`);
      if (existing) {
        existing.state = "open";
        existing.headSha = headSha;
        if (existing.shas.at(-1) !== headSha) existing.shas.push(headSha);
        return pullRequestEvent(repo, existing, "reopened", body, base);
      }
      const pull: PullRecord = {
        number: number ?? Math.max(0, ...repo.pulls.map((p) => p.number), ...repo.comments.map((c) => c.issue)) + 1,
        title: typeof body.title === "string" && body.title ? body.title : body.head,
        headRef: body.head,
        headSha,
        shas: [headSha],
        state: "open",
        updatedAt: new Date().toISOString(),
      };
      repo.pulls.push(pull);
      return pullRequestEvent(repo, pull, "opened", body, base);
    }
    const m = /^pulls\/(\d+)(?:\/(synchronize|close))?$/.exec(rest);
    if (!m) return undefined;
    const pull = repo.pulls.find((p) => p.number === Number(m[1]));
    if (!pull) return reply(404, { message: `no pull request #${m[1]} in ${repo.owner}/${repo.name}` });
    if (method === "GET" && !m[2]) return reply(200, { ...pullJson(repo, pull, base), shas: pull.shas });
    if (method !== "POST" || !m[2]) return undefined;
    if (pull.state === "closed") return validationFailed(`pull request #${pull.number} is closed`);
    if (m[2] === "close") {
      pull.state = "closed";
      return pullRequestEvent(repo, pull, "closed", body, base);
    }
    const headSha = dir ? await resolveCommit(dir, `refs/heads/${pull.headRef}`) : null;
    if (!headSha) return validationFailed(`branch ${pull.headRef} no longer exists`);
    if (headSha === pull.headSha) return validationFailed(`branch ${pull.headRef} is still at ${headSha}: commit something first`);
    pull.headSha = headSha;
    pull.shas.push(headSha);
    return pullRequestEvent(repo, pull, "synchronize", body, base);
  }

  /** What a browser page shows (pages.ts renders it); null for a path that is no page. */
  function page(path: string, base: string): PageData | null {
    if (path === "/") return { kind: "index", repositories: [...repos.values()].map((r) => ({ fullName: `${r.owner}/${r.name}`, pulls: r.pulls.length })) };
    const m = /^\/([^/]+)\/([^/]+?)(?:\/pull\/(\d+))?\/?$/.exec(path);
    const repo = m ? repos.get(keyOf(decodeURIComponent(m[1]!), decodeURIComponent(m[2]!))) : undefined;
    if (!m || !repo) return null;
    const fullName = `${repo.owner}/${repo.name}`;
    if (!m[3]) {
      return { kind: "repository", fullName, pulls: repo.pulls.map((p) => ({ number: p.number, title: p.title, state: p.state, headRef: p.headRef })), deliveries: repo.deliveries };
    }
    const pull = repo.pulls.find((p) => p.number === Number(m[3]));
    const number = Number(m[3]);
    const comments = repo.comments.filter((c) => c.issue === number);
    if (!pull && comments.length === 0) return null;
    const shas = new Set(pull?.shas ?? []);
    return {
      kind: "pull",
      fullName,
      number,
      pull: pull ? { title: pull.title, state: pull.state, headRef: pull.headRef, headSha: pull.headSha } : null,
      deployments: repo.deployments
        .filter((d) => shas.has(d.sha) || (pull !== undefined && d.ref === pull.headRef))
        .map((d) => ({ id: d.id, environment: d.environment, sha: d.sha, createdAt: d.createdAt, statuses: d.statuses as unknown as DeploymentStatusView[] })),
      comments: comments.map((c) => ({ user: c.user.login, body: c.body, createdAt: c.createdAt, updatedAt: c.updatedAt })),
      deliveries: repo.deliveries,
      base,
    };
  }

  function installationOf(owner: string, name: string): Installation | undefined {
    const key = keyOf(owner, name);
    return [...installations.values()].find((i) => i.repositories.has(key));
  }

  /** RS256 signature, iss, iat and exp, like GitHub. Answers the error reply, or undefined when the JWT is good. */
  function checkJwt(authorization: string | undefined): Reply | undefined {
    const jwt = /^Bearer (\S+)$/.exec(authorization ?? "")?.[1];
    const parts = jwt?.split(".");
    if (!jwt || parts?.length !== 3) return unauthorized("A JSON web token could not be decoded");
    const [header, payload, signature] = parts as [string, string, string];
    const head = parseJson(Buffer.from(header, "base64url").toString("utf8"));
    const claims = parseJson(Buffer.from(payload, "base64url").toString("utf8"));
    if (!isObject(head) || !isObject(claims) || head.alg !== "RS256") return unauthorized("A JSON web token could not be decoded");
    const signed = verify("RSA-SHA256", Buffer.from(`${header}.${payload}`), appKey().publicKey, Buffer.from(signature, "base64url"));
    if (!signed) return unauthorized("A JSON web token could not be decoded");
    if (String(claims.iss) !== GITHUB_APP_ID && claims.iss !== GITHUB_CLIENT_ID) return unauthorized("'Issuer' claim ('iss') must be an Integer");
    const now = Math.floor(Date.now() / 1000);
    if (!Number.isInteger(claims.iat) || (claims.iat as number) > now) {
      return unauthorized("'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued");
    }
    if (typeof claims.exp !== "number" || claims.exp <= now) {
      return unauthorized("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires");
    }
    if (claims.exp > now + 600 || claims.exp - (claims.iat as number) > 600) return unauthorized("'Expiration time' claim ('exp') is too far in the future");
    return undefined;
  }

  function installationJson(installation: Installation, base: string) {
    return {
      id: installation.id,
      account: { login: installation.account, id: 100_000 + installation.id % 1000, type: installation.accountType },
      repository_selection: "selected",
      access_tokens_url: `${base}/app/installations/${installation.id}/access_tokens`,
      repositories_url: `${base}/installation/repositories`,
      html_url: `https://github.com/organizations/${installation.account}/settings/installations/${installation.id}`,
      app_id: Number(GITHUB_APP_ID),
      app_slug: GITHUB_APP_SLUG,
      target_id: 100_000 + installation.id % 1000,
      target_type: installation.accountType,
      permissions: installation.permissions,
      events: ["pull_request", "push"],
      created_at: installation.createdAt,
      updated_at: installation.createdAt,
      single_file_name: null,
      suspended_by: installation.suspendedAt ? { login: installation.account, id: 100_000 + installation.id % 1000, type: "User" } : null,
      suspended_at: installation.suspendedAt,
    };
  }

  function repositoryJson(key: string, base: string) {
    const repo = repos.get(key)!;
    const owner = { login: repo.owner, id: 100_000 + repo.id % 1000, type: "Organization" };
    return {
      id: repo.id,
      node_id: `R_${repo.id}`,
      name: repo.name,
      full_name: `${repo.owner}/${repo.name}`,
      private: true,
      owner,
      html_url: `https://github.com/${repo.owner}/${repo.name}`,
      url: `${base}/repos/${repo.owner}/${repo.name}`,
      default_branch: "main",
    };
  }

  function mintToken(installation: Installation, body: unknown): Reply {
    installation.tokenRequests.push(body ?? null);
    if (installation.suspendedAt) return reply(403, { message: "This installation has been suspended", documentation_url: DOCS, status: "403" });
    const request = isObject(body) ? body : {};
    let repositories: Set<string> | undefined;
    if (request.repositories !== undefined) {
      if (!Array.isArray(request.repositories) || request.repositories.some((r) => typeof r !== "string")) return validationFailed("Invalid request.\n\nFor 'properties/repositories', is not an array of strings.");
      repositories = new Set((request.repositories as string[]).map((name) => keyOf(installation.account, name)));
    }
    if (request.repository_ids !== undefined) {
      if (!Array.isArray(request.repository_ids) || request.repository_ids.some((r) => !Number.isInteger(r))) return validationFailed("Invalid request.\n\nFor 'properties/repository_ids', is not an array of integers.");
      const byId = new Map([...repos.entries()].map(([key, repo]) => [repo.id, key]));
      repositories ??= new Set();
      for (const id of request.repository_ids as number[]) repositories.add(byId.get(id) ?? `#${id}`);
    }
    if (repositories) {
      if (repositories.size > 500) return validationFailed("Too many repositories: at most 500 may be selected.");
      if ([...repositories].some((key) => !installation.repositories.has(key))) {
        return validationFailed("There is at least one repository that does not exist or is not accessible to the parent installation.");
      }
    }
    let permissions = installation.permissions;
    if (request.permissions !== undefined) {
      if (!isObject(request.permissions)) return validationFailed("Invalid request.\n\nFor 'properties/permissions', is not an object.");
      const asked = request.permissions as Record<string, unknown>;
      for (const [name, level] of Object.entries(asked)) {
        if (typeof level !== "string" || !LEVELS[level] || (LEVELS[installation.permissions[name] ?? ""] ?? 0) < LEVELS[level]!) {
          return validationFailed("The permissions requested are not granted to this installation.");
        }
      }
      permissions = { ...(asked as Record<string, string>), metadata: "read" };
    }
    const token = `ghs_${randomBytes(18).toString("hex")}`;
    const expiresAt = Date.now() + installation.tokenLifetimeSeconds * 1000;
    tokens.set(token, { installationId: installation.id, expiresAt, repositories, permissions, revoked: false });
    return reply(201, {
      token,
      expires_at: isoSeconds(expiresAt),
      permissions,
      repository_selection: repositories ? "selected" : "all",
      ...(repositories ? { repositories: [...repositories].map((key) => ({ id: repos.get(key)?.id, name: key.split("/")[1], full_name: key })) } : {}),
    });
  }

  /** The installation token of a repository request, held to its installation, repositories and permissions. */
  function checkToken(authorization: string | undefined, repo: Repo, permission: string, level: Level): Reply | undefined {
    const value = /^(?:Bearer|token) (\S+)$/.exec(authorization ?? "")?.[1];
    const token = value ? tokens.get(value) : undefined;
    if (!token || token.revoked || token.expiresAt <= Date.now()) return unauthorized("Bad credentials");
    const installation = installations.get(token.installationId);
    const key = keyOf(repo.owner, repo.name);
    if (!installation?.repositories.has(key) || (token.repositories && !token.repositories.has(key))) return notFound();
    const alternatives = permission === "issues" ? ["issues", "pull_requests"] : [permission];
    if (!alternatives.some((name) => (LEVELS[token.permissions[name] ?? ""] ?? 0) >= LEVELS[level]!)) return forbidden();
    return undefined;
  }

  function fileJson(repo: Repo, path: string, ref: string, content: Buffer, base: string) {
    const sha = blobSha(content);
    const large = content.length > 1_000_000;
    const self = `${base}/repos/${repo.owner}/${repo.name}/contents/${path}?ref=${encodeURIComponent(ref)}`;
    return {
      type: "file",
      encoding: large ? "none" : "base64",
      size: content.length,
      name: path.split("/").at(-1),
      path,
      content: large ? "" : (content.toString("base64").match(/.{1,60}/g) ?? []).join("\n") + "\n",
      sha,
      url: self,
      git_url: `${base}/repos/${repo.owner}/${repo.name}/git/blobs/${sha}`,
      html_url: `https://github.com/${repo.owner}/${repo.name}/blob/${ref}/${path}`,
      download_url: `https://raw.githubusercontent.com/${repo.owner}/${repo.name}/${ref}/${path}`,
      _links: { self, git: `${base}/repos/${repo.owner}/${repo.name}/git/blobs/${sha}`, html: `https://github.com/${repo.owner}/${repo.name}/blob/${ref}/${path}` },
    };
  }

  async function getContents(repo: Repo, path: string, ref: string, base: string): Promise<Reply> {
    const dir = gitDirOf(repo);
    if (dir) return gitContents(dir, repo, path, ref, base);
    const file = repo.files.get(`${ref}\n${path}`);
    if (file) return reply(200, fileJson(repo, path, ref, file, base));
    const prefix = `${ref}\n${path ? `${path}/` : ""}`;
    const children = new Set<string>();
    for (const key of repo.files.keys()) if (key.startsWith(prefix)) children.add(key.slice(prefix.length).split("/")[0]!);
    if (children.size === 0) return notFound("https://docs.github.com/rest/repos/contents#get-repository-content");
    return reply(200, [...children].map((name) => ({ type: "dir", name, path: path ? `${path}/${name}` : name })));
  }

  /** The contents API over a served repository: a file, or a directory's entries, at a branch or commit. */
  async function gitContents(dir: string, repo: Repo, path: string, ref: string, base: string): Promise<Reply> {
    const commit = await resolveCommit(dir, ref);
    if (!commit) return reply(404, { message: `No commit found for the ref ${ref}`, documentation_url: "https://docs.github.com/rest/repos/contents#get-repository-content", status: "404" });
    const object = `${commit}:${path}`;
    const type = await git(dir, ["cat-file", "-t", object]).then((out) => out.toString("utf8").trim(), () => null);
    if (type === "blob") return reply(200, fileJson(repo, path, ref, await git(dir, ["cat-file", "blob", object]), base));
    if (type !== "tree") return notFound("https://docs.github.com/rest/repos/contents#get-repository-content");
    const entries = (await git(dir, ["ls-tree", object])).toString("utf8").split("\n").filter(Boolean);
    return reply(
      200,
      entries.map((line) => {
        const [meta, name] = line.split("\t") as [string, string];
        return { type: meta.split(" ")[1] === "tree" ? "dir" : "file", name, path: path ? `${path}/${name}` : name };
      }),
    );
  }

  function deploymentJson(repo: Repo, d: DeploymentRecord, base: string) {
    const url = `${base}/repos/${repo.owner}/${repo.name}/deployments/${d.id}`;
    return {
      url,
      id: d.id,
      node_id: `DE_${d.id}`,
      sha: d.sha,
      ref: d.ref,
      task: "deploy",
      payload: d.payload,
      original_environment: d.environment,
      environment: d.environment,
      description: d.description,
      creator: botUser,
      created_at: d.createdAt,
      updated_at: d.createdAt,
      statuses_url: `${url}/statuses`,
      repository_url: `${base}/repos/${repo.owner}/${repo.name}`,
      transient_environment: d.transientEnvironment,
      production_environment: d.productionEnvironment,
      performed_via_github_app: appJson,
    };
  }

  async function createDeployment(repo: Repo, body: unknown, base: string): Promise<Reply> {
    if (!isObject(body) || typeof body.ref !== "string" || body.ref === "") return validationFailed('Invalid request.\n\n"ref" wasn\'t supplied.');
    if (body.required_contexts === undefined) {
      return reply(409, {
        message: `Conflict: Commit status checks failed for ${body.ref}.`,
        errors: [{ contexts: [{ context: "ci/fake", state: "pending" }], resource: "Deployment", field: "required_contexts", code: "invalid" }],
        documentation_url: DOCS,
        status: "409",
      });
    }
    const environment = typeof body.environment === "string" ? body.environment : "production";
    const dir = gitDirOf(repo);
    const resolved = dir ? await resolveCommit(dir, body.ref) : null;
    if (dir && !resolved) return validationFailed(`No ref found for: ${body.ref}`);
    const sha = resolved ?? (/^[0-9a-f]{40}$/.test(body.ref) ? body.ref : createHash("sha1").update(`${repo.owner}/${repo.name}@${body.ref}`).digest("hex"));
    const deployment: DeploymentRecord = {
      id: nextDeploymentId++,
      ref: body.ref,
      sha,
      environment,
      description: typeof body.description === "string" ? body.description : null,
      payload: body.payload ?? {},
      transientEnvironment: body.transient_environment === true,
      productionEnvironment: typeof body.production_environment === "boolean" ? body.production_environment : environment === "production",
      createdAt: isoSeconds(Date.now()),
      request: body,
      statuses: [],
    };
    repo.deployments.push(deployment);
    return reply(201, deploymentJson(repo, deployment, base));
  }

  function createDeploymentStatus(repo: Repo, deploymentId: number, body: unknown, base: string): Reply {
    const deployment = repo.deployments.find((d) => d.id === deploymentId);
    if (!deployment) return notFound();
    const states = ["error", "failure", "inactive", "in_progress", "queued", "pending", "success"];
    if (!isObject(body) || typeof body.state !== "string" || !states.includes(body.state)) {
      return validationFailed("Validation Failed", [{ resource: "DeploymentStatus", code: "custom", field: "state", message: "state is not included in the list" }]);
    }
    if (typeof body.description === "string" && body.description.length > 140) {
      return validationFailed("Validation Failed", [{ resource: "DeploymentStatus", code: "custom", field: "description", message: "description is too long (maximum is 140 characters)" }]);
    }
    const now = isoSeconds(Date.now());
    const deploymentUrl = `${base}/repos/${repo.owner}/${repo.name}/deployments/${deployment.id}`;
    const status = {
      url: `${deploymentUrl}/statuses/${nextStatusId}`,
      id: nextStatusId++,
      node_id: `DES_${deployment.id}`,
      state: body.state,
      creator: botUser,
      description: typeof body.description === "string" ? body.description : "",
      environment: typeof body.environment === "string" ? body.environment : deployment.environment,
      target_url: typeof body.log_url === "string" ? body.log_url : "",
      log_url: typeof body.log_url === "string" ? body.log_url : "",
      environment_url: typeof body.environment_url === "string" ? body.environment_url : "",
      created_at: now,
      updated_at: now,
      deployment_url: deploymentUrl,
      repository_url: `${base}/repos/${repo.owner}/${repo.name}`,
      performed_via_github_app: appJson,
    };
    deployment.statuses.push(status);
    return reply(201, status);
  }

  function commentJson(repo: Repo, c: CommentRecord, base: string) {
    return {
      url: `${base}/repos/${repo.owner}/${repo.name}/issues/comments/${c.id}`,
      html_url: `https://github.com/${repo.owner}/${repo.name}/pull/${c.issue}#issuecomment-${c.id}`,
      issue_url: `${base}/repos/${repo.owner}/${repo.name}/issues/${c.issue}`,
      id: c.id,
      node_id: `IC_${c.id}`,
      user: { ...c.user, node_id: `U_${c.user.id}`, site_admin: false },
      created_at: c.createdAt,
      updated_at: c.updatedAt,
      author_association: c.viaApp ? "NONE" : "MEMBER",
      body: c.body,
      performed_via_github_app: c.viaApp ? appJson : null,
    };
  }

  function addComment(repo: Repo, issue: number, body: string, user: CommentRecord["user"], viaApp: boolean): CommentRecord {
    const now = isoSeconds(Date.now());
    const comment = { id: nextCommentId++, issue, body, user, viaApp, createdAt: now, updatedAt: now };
    repo.comments.push(comment);
    return comment;
  }

  function commentBody(body: unknown): string | Reply {
    if (!isObject(body) || typeof body.body !== "string" || body.body === "") {
      return validationFailed("Validation Failed", [{ resource: "IssueComment", code: "missing_field", field: "body" }]);
    }
    if (body.body.length > 65_536) return validationFailed("Validation Failed", [{ resource: "IssueComment", code: "custom", field: "body", message: "body is too long (maximum is 65536 characters)" }]);
    return body.body;
  }

  function listComments(repo: Repo, issue: number, url: URL, base: string): Reply {
    const page = paged(repo.comments.filter((c) => c.issue === issue), url, base);
    return reply(200, page.items.map((c) => commentJson(repo, c, base)), page.headers);
  }

  function listInstallationRepositories(authorization: string | undefined, url: URL, base: string): Reply {
    const value = /^(?:Bearer|token) (\S+)$/.exec(authorization ?? "")?.[1];
    const token = value ? tokens.get(value) : undefined;
    if (!token || token.revoked || token.expiresAt <= Date.now()) return unauthorized("Bad credentials");
    const installation = installations.get(token.installationId);
    if (!installation) return unauthorized("Bad credentials");
    const visible = [...installation.repositories].filter((key) => !token.repositories || token.repositories.has(key)).sort();
    const page = paged(visible, url, base);
    return reply(200, { total_count: visible.length, repository_selection: "selected", repositories: page.items.map((key) => repositoryJson(key, base)) }, page.headers);
  }

  /** The installations of this App a GitHub user can access (GET /user/installations with a user token). */
  function listUserInstallations(userId: number, url: URL, base: string): Reply {
    const visible = [...(userInstallations.get(userId) ?? [])].map((id) => installations.get(id)).filter((i): i is Installation => i !== undefined);
    const page = paged(visible, url, base);
    return reply(200, { total_count: visible.length, installations: page.items.map((i) => installationJson(i, base)) }, page.headers);
  }

  function grantInstallations(userId: number, ids: number[]): void {
    const visible = userInstallations.get(userId) ?? new Set<number>();
    for (const id of ids) visible.add(id);
    userInstallations.set(userId, visible);
  }

  /** The GitHub App and repository API; undefined for a path it does not serve. */
  async function api(method: string, url: URL, authorization: string | undefined, body: unknown, base: string): Promise<Reply | undefined> {
    const route = `${method} ${url.pathname}`;
    if (route === "GET /app") return checkJwt(authorization) ?? reply(200, appJson);

    let m = /^GET \/app\/installations\/(\d+)$/.exec(route);
    if (m) {
      const denied = checkJwt(authorization);
      if (denied) return denied;
      const installation = installations.get(Number(m[1]));
      return installation ? reply(200, installationJson(installation, base)) : notFound("https://docs.github.com/rest/apps/apps#get-an-installation-for-the-authenticated-app");
    }
    if (route === "GET /installation/repositories") return listInstallationRepositories(authorization, url, base);

    m = /^GET \/repos\/([^/]+)\/([^/]+)\/installation$/.exec(route);
    if (m) {
      const denied = checkJwt(authorization);
      if (denied) return denied;
      const installation = installationOf(decodeURIComponent(m[1]!), decodeURIComponent(m[2]!));
      return installation ? reply(200, installationJson(installation, base)) : notFound("https://docs.github.com/rest/apps/apps#get-a-repository-installation-for-the-authenticated-app");
    }

    m = /^POST \/app\/installations\/(\d+)\/access_tokens$/.exec(route);
    if (m) {
      const denied = checkJwt(authorization);
      if (denied) return denied;
      const installation = installations.get(Number(m[1]));
      return installation ? mintToken(installation, body) : notFound("https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app");
    }

    m = /^(GET|POST|PATCH) \/repos\/([^/]+)\/([^/]+)\/(.+)$/.exec(route);
    if (!m) return undefined;
    const repo = repos.get(keyOf(decodeURIComponent(m[2]!), decodeURIComponent(m[3]!)));
    const rest = m[4]!;
    const need = (permission: string, level: Level) => (repo ? checkToken(authorization, repo, permission, level) : authorization ? unauthorizedOrNotFound(authorization) : unauthorized("Requires authentication"));

    let r = /^contents\/(.+)$/.exec(rest);
    if (r && method === "GET") {
      const denied = need("contents", "read");
      if (denied) return denied;
      const path = r[1]!.split("/").map(decodeURIComponent).join("/");
      return getContents(repo!, path, url.searchParams.get("ref") || "main", base);
    }
    if (rest === "deployments" && method === "POST") return need("deployments", "write") ?? createDeployment(repo!, body, base);
    r = /^deployments\/(\d+)\/statuses$/.exec(rest);
    if (r && method === "POST") return need("deployments", "write") ?? createDeploymentStatus(repo!, Number(r[1]), body, base);
    r = /^issues\/(\d+)\/comments$/.exec(rest);
    if (r && method === "GET") return need("issues", "read") ?? listComments(repo!, Number(r[1]), url, base);
    if (r && method === "POST") {
      const denied = need("issues", "write");
      if (denied) return denied;
      const text = commentBody(body);
      if (typeof text !== "string") return text;
      return reply(201, commentJson(repo!, addComment(repo!, Number(r[1]), text, botUser, true), base));
    }
    r = /^issues\/comments\/(\d+)$/.exec(rest);
    if (r && method === "PATCH") {
      const denied = need("issues", "write");
      if (denied) return denied;
      const comment = repo!.comments.find((c) => c.id === Number(r![1]));
      if (!comment) return notFound();
      const text = commentBody(body);
      if (typeof text !== "string") return text;
      comment.body = text;
      comment.updatedAt = isoSeconds(Date.now());
      return reply(200, commentJson(repo!, comment, base));
    }
    return undefined;
  }

  /** A repository nobody installed the App on: a valid token sees nothing (404); an invalid one is 401. */
  function unauthorizedOrNotFound(authorization: string): Reply {
    const value = /^(?:Bearer|token) (\S+)$/.exec(authorization)?.[1];
    const token = value ? tokens.get(value) : undefined;
    return token && !token.revoked && token.expiresAt > Date.now() ? notFound() : unauthorized("Bad credentials");
  }

  async function admin(method: string, url: URL, body: unknown, base: string): Promise<Reply | undefined> {
    const route = `${method} ${url.pathname}`;
    if (route === "GET /_fake/app/private-key") return reply(200, { app_id: GITHUB_APP_ID, private_key: githubAppPrivateKey() });

    if (route === "POST /_fake/app/installations") {
      const b = isObject(body) ? body : {};
      const names = Array.isArray(b.repositories) ? b.repositories.filter((r): r is string => typeof r === "string" && /^[^/\s]+\/[^/\s]+$/.test(r)) : [];
      if (names.length === 0) return reply(400, { message: "repositories: a non-empty list of owner/name" });
      const id = nextInstallationId++;
      for (const name of names) repoFor(name.split("/")[0]!, name.split("/")[1]!);
      installations.set(id, {
        id,
        account: names[0]!.split("/")[0]!,
        accountType: b.account_type === "User" ? "User" : "Organization",
        suspendedAt: null,
        repositories: new Set(names.map((n) => n.toLowerCase())),
        permissions: isObject(b.permissions) ? (b.permissions as Record<string, string>) : { ...DEFAULT_PERMISSIONS },
        tokenLifetimeSeconds: typeof b.token_lifetime_seconds === "number" ? b.token_lifetime_seconds : 3600,
        tokenRequests: [],
        createdAt: isoSeconds(Date.now()),
      });
      const created = installations.get(id)!;
      return reply(201, { id, account: created.account, repositories: [...created.repositories].map((key) => ({ id: repos.get(key)!.id, full_name: key })) });
    }

    const adding = /^POST \/_fake\/app\/installations\/(\d+)\/repositories$/.exec(route);
    if (adding) {
      const installation = installations.get(Number(adding[1]));
      if (!installation) return reply(404, { message: "no such installation" });
      const fullName = isObject(body) && typeof body.full_name === "string" ? body.full_name : "";
      if (!/^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+$/.test(fullName)) return reply(400, { message: "full_name: owner/name of the repository to add" });
      const repo = repoFor(fullName.split("/")[0]!, fullName.split("/")[1]!);
      const key = keyOf(repo.owner, repo.name);
      const added = !installation.repositories.has(key);
      installation.repositories.add(key);
      const delivery = added
        ? await deliver(repo, "installation_repositories", {
            action: "added",
            installation: installationJson(installation, base),
            repository_selection: "selected",
            repositories_added: [{ id: repo.id, node_id: `R_${repo.id}`, name: repo.name, full_name: `${repo.owner}/${repo.name}`, private: true }],
            repositories_removed: [],
            requester: null,
            sender: senderOf(body),
          })
        : null;
      return reply(200, { id: repo.id, full_name: `${repo.owner}/${repo.name}`, added, delivery });
    }

    let changed = /^(PATCH|DELETE) \/_fake\/app\/installations\/(\d+)$/.exec(route);
    if (changed) {
      const installation = installations.get(Number(changed[2]));
      if (!installation) return reply(404, { message: "no such installation" });
      if (changed[1] === "DELETE") {
        installations.delete(installation.id);
        return reply(204);
      }
      const b = isObject(body) ? body : {};
      if (typeof b.suspended === "boolean") installation.suspendedAt = b.suspended ? isoSeconds(Date.now()) : null;
      if (Array.isArray(b.repositories)) {
        const names = b.repositories.filter((r): r is string => typeof r === "string" && /^[^/\s]+\/[^/\s]+$/.test(r));
        for (const name of names) repoFor(name.split("/")[0]!, name.split("/")[1]!);
        installation.repositories = new Set(names.map((n) => n.toLowerCase()));
      }
      return reply(200, { id: installation.id, suspended_at: installation.suspendedAt, repositories: [...installation.repositories].map((key) => ({ id: repos.get(key)!.id, full_name: key })) });
    }

    let m = /^(GET) \/_fake\/app\/installations\/(\d+)$|^(DELETE) \/_fake\/app\/installations\/(\d+)\/tokens$/.exec(route);
    if (m) {
      const installation = installations.get(Number(m[2] ?? m[4]));
      if (!installation) return reply(404, { message: "no such installation" });
      const issued = [...tokens.values()].filter((t) => t.installationId === installation.id);
      if (m[3] === "DELETE") {
        for (const token of issued) token.revoked = true;
        return reply(204);
      }
      return reply(200, { id: installation.id, repositories: [...installation.repositories], tokens_issued: issued.length, token_requests: installation.tokenRequests });
    }

    if (route === "POST /_fake/failures") {
      const b = isObject(body) ? body : {};
      const mode = (b.mode ?? "error") as Failure["mode"];
      if (typeof b.match !== "string" || !["error", "reset", "hang"].includes(mode)) return reply(400, { message: "a failure needs match and a known mode" });
      failures.push({
        match: b.match,
        status: typeof b.status === "number" ? b.status : 502,
        headers: isObject(b.headers) ? (b.headers as Record<string, string>) : {},
        message: typeof b.message === "string" ? b.message : "Server Error",
        mode,
        times: typeof b.times === "number" ? b.times : 1,
      });
      return reply(204);
    }

    if (route === "GET /_fake/requests") {
      const prefix = url.searchParams.get("match") ?? "";
      return reply(200, { requests: requests.filter((r) => `${r.method} ${r.path}`.startsWith(prefix)) });
    }

    m = /^(GET|POST|DELETE) \/_fake\/repos\/([^/]+)\/([^/]+)\/(.+)$/.exec(route);
    if (!m) return undefined;
    const repo = repoFor(decodeURIComponent(m[2]!), decodeURIComponent(m[3]!));
    const rest = m[4]!;
    const pullAnswer = await pulls(method, rest, repo, body, base);
    if (pullAnswer) return pullAnswer;
    if (method === "POST" && rest === "files") {
      if (!isObject(body) || typeof body.path !== "string" || typeof body.content !== "string") return reply(400, { message: "a file needs path and content" });
      const ref = typeof body.ref === "string" && body.ref ? body.ref : "main";
      const content = body.encoding === "base64" ? Buffer.from(body.content, "base64") : Buffer.from(body.content, "utf8");
      repo.files.set(`${ref}\n${body.path.replace(/^\/+/, "")}`, content);
      return reply(201, { ref, path: body.path, sha: blobSha(content) });
    }
    if (method === "GET" && rest === "deployments") {
      return reply(200, repo.deployments.map((d) => ({ ...deploymentJson(repo, d, base), request: d.request, statuses: d.statuses })));
    }
    let r = /^issues\/(\d+)\/comments$/.exec(rest);
    if (r && method === "GET") return reply(200, repo.comments.filter((c) => c.issue === Number(r![1])).map((c) => commentJson(repo, c, base)));
    if (r && method === "POST") {
      if (!isObject(body) || typeof body.body !== "string") return reply(400, { message: "a comment needs a body" });
      const user = isObject(body.user) ? (body.user as { login: string; type: string }) : { login: "octocat", type: "User" };
      return reply(201, commentJson(repo, addComment(repo, Number(r[1]), body.body, { login: user.login, id: 583231, type: user.type }, false), base));
    }
    r = /^issues\/comments\/(\d+)$/.exec(rest);
    if (r && method === "DELETE") {
      const index = repo.comments.findIndex((c) => c.id === Number(r![1]));
      if (index === -1) return reply(404, { message: "no such comment" });
      repo.comments.splice(index, 1);
      return reply(204);
    }
    return undefined;
  }

  function injectedFailure(method: string, path: string): Failure | undefined {
    const index = failures.findIndex((f) => `${method} ${path}`.startsWith(f.match));
    if (index === -1) return undefined;
    const failure = failures[index]!;
    if (--failure.times <= 0) failures.splice(index, 1);
    return failure;
  }

  function record(method: string, path: string, authorization: string | undefined): void {
    const value = /^(?:Bearer|token) (\S+)$/.exec(authorization ?? "")?.[1] ?? "";
    requests.push({ method, path, auth: value.startsWith("eyJ") ? "jwt" : value ? "token" : "none" });
  }

  return { api, admin, injectedFailure, record, listUserInstallations, grantInstallations, mayClone, page };
}

/** Who is signed in to the fake GitHub in the browser (POST /_fake/oauth/approver), per fake server. */
const approvers = new WeakMap<Map<string, Grant>, Pick<Grant, "user" | "emails">>();

/** The browser side of the OAuth web flow; undefined for any other request. */
async function browserOAuth(route: string, url: URL, req: IncomingMessage, grants: Map<string, Grant>): Promise<((res: ServerResponse) => void) | undefined> {
  if (route === "POST /_fake/oauth/approver") {
    const body = parseJson(await readBody(req));
    if (!isObject(body) || !isObject(body.user) || !Array.isArray(body.emails)) return (res) => json(res, 400, { message: "an approver needs user and emails" });
    approvers.set(grants, { user: body.user as unknown as GitHubUser, emails: body.emails as Grant["emails"] });
    return (res) => void res.writeHead(204).end();
  }
  if (route !== "GET /login/oauth/authorize") return undefined;
  const page = (status: number, text: string) => (res: ServerResponse) => void res.writeHead(status, { "content-type": "text/html; charset=utf-8" }).end(`<!doctype html><title>GitHub</title><p>${text}</p>`);
  if (url.searchParams.get("client_id") !== GITHUB_CLIENT_ID) return page(404, "Not Found");
  const redirectUri = url.searchParams.get("redirect_uri");
  if (!redirectUri || !URL.canParse(redirectUri)) return page(400, "The redirect_uri is missing or not a URL.");
  const approver = approvers.get(grants);
  if (!approver) return page(403, "Nobody is signed in to the fake GitHub: POST /_fake/oauth/approver first.");
  const code = randomBytes(10).toString("hex");
  grants.set(code, { ...approver, redirectUri, used: false });
  const back = new URL(redirectUri);
  back.searchParams.set("code", code);
  back.searchParams.set("state", url.searchParams.get("state") ?? "");
  return (res) => void res.writeHead(302, { location: back.toString() }).end();
}

function send(res: ServerResponse, answer: Reply): void {
  const headers: Record<string, string> = {
    "x-github-media-type": "github.v3; format=json",
    "x-ratelimit-limit": "5000",
    "x-ratelimit-remaining": "4999",
    "x-ratelimit-reset": String(Math.floor(Date.now() / 1000) + 3600),
    "x-ratelimit-used": "1",
    "x-ratelimit-resource": "core",
    ...answer.headers,
  };
  if (answer.body === undefined) {
    res.writeHead(answer.status, headers);
    res.end();
    return;
  }
  json(res, answer.status, answer.body, headers);
}

/** Paths of git's smart HTTP protocol (served by git-server.ts when the local GitHub has a gitRoot). */
const GIT_PATH = /^\/[^/]+\/[^/]+\/(?:info\/refs|git-upload-pack|git-receive-pack)$/;

export const githubFake = {
  name: "github",
  start(options: LocalGitHubOptions = {}): Promise<Server> {
    const grants = new Map<string, Grant>();
    const accessTokens = new Map<string, Grant>();
    const app = createAppApi(options);
    if (options.approver) approvers.set(grants, options.approver);
    const git = options.gitRoot ? gitHttpHandler({ root: options.gitRoot, authorize: (token, repo) => app.mayClone(token, repo) }) : null;
    return listen(async (req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url ?? "/", "http://github.test");
      const method = req.method ?? "GET";
      const route = `${method} ${url.pathname}`;
      if (git && GIT_PATH.test(url.pathname)) return git(req, res);
      if (method === "GET" && !url.pathname.startsWith("/_fake/")) {
        const view = app.page(url.pathname, `http://${req.headers.host ?? "127.0.0.1"}`);
        if (view) return void res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(renderPage(view));
      }

      const browser = await browserOAuth(route, url, req, grants);
      if (browser) return browser(res);

      if (route === "POST /_fake/oauth/grant") {
        const body = JSON.parse(await readBody(req)) as { user: GitHubUser; emails: Grant["emails"]; redirect_uri?: string; installations?: number[] };
        if (Array.isArray(body.installations)) app.grantInstallations(body.user.id, body.installations);
        const code = randomBytes(10).toString("hex");
        grants.set(code, { user: body.user, emails: body.emails, redirectUri: body.redirect_uri, used: false });
        return json(res, 200, { code });
      }

      if (url.pathname.startsWith("/_fake/")) {
        const answer = await app.admin(method, url, parseJson(await readBody(req)), `http://${req.headers.host ?? "127.0.0.1"}`);
        return send(res, answer ?? reply(404, { message: "no such fake route" }));
      }

      if (route === "POST /login/oauth/access_token") {
        const raw = await readBody(req);
        const params: Record<string, string> = req.headers["content-type"]?.includes("json")
          ? (JSON.parse(raw) as Record<string, string>)
          : Object.fromEntries(new URLSearchParams(raw));
        const docs = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors";
        if (params.client_id !== GITHUB_CLIENT_ID || params.client_secret !== GITHUB_CLIENT_SECRET) {
          return json(res, 200, { error: "incorrect_client_credentials", error_description: "The client_id and/or client_secret passed are incorrect.", error_uri: docs });
        }
        const grant = params.code ? grants.get(params.code) : undefined;
        if (!grant || grant.used) {
          return json(res, 200, { error: "bad_verification_code", error_description: "The code passed is incorrect or expired.", error_uri: docs });
        }
        if (grant.redirectUri && params.redirect_uri !== grant.redirectUri) {
          return json(res, 200, { error: "redirect_uri_mismatch", error_description: "The redirect_uri MUST match the registered callback URL for this application.", error_uri: docs });
        }
        grant.used = true;
        const token = `gho_${randomBytes(18).toString("hex")}`;
        accessTokens.set(token, grant);
        return json(res, 200, { access_token: token, token_type: "bearer", scope: "read:user,user:email" });
      }

      const bearer = /^(?:Bearer|token) (\S+)$/.exec(req.headers.authorization ?? "")?.[1];
      const grant = bearer ? accessTokens.get(bearer) : undefined;
      if (route === "GET /user" || route === "GET /user/emails" || route === "GET /user/installations") {
        if (!grant) return json(res, 401, { message: "Bad credentials", documentation_url: DOCS, status: "401" });
        if (route === "GET /user/emails") return json(res, 200, grant.emails);
        if (route === "GET /user/installations") {
          app.record(method, `${url.pathname}${url.search}`, req.headers.authorization);
          return send(res, app.listUserInstallations(grant.user.id, url, `http://${req.headers.host ?? "127.0.0.1"}`));
        }
        return json(res, 200, { ...grant.user, type: "User", site_admin: false, html_url: `https://github.com/${grant.user.login}` });
      }

      const raw = await readBody(req);
      app.record(method, `${url.pathname}${url.search}`, req.headers.authorization);
      const failure = app.injectedFailure(method, url.pathname);
      if (failure?.mode === "reset") return void req.socket.destroy();
      if (failure?.mode === "hang") return;
      if (failure) return send(res, reply(failure.status, { message: failure.message, documentation_url: DOCS, status: String(failure.status) }, failure.headers));
      const body = parseJson(raw);
      if (raw && body === undefined) return send(res, reply(400, { message: "Problems parsing JSON", documentation_url: DOCS, status: "400" }));
      const answer = await app.api(method, url, req.headers.authorization, body, `http://${req.headers.host ?? "127.0.0.1"}`);
      return send(res, answer ?? reply(404, { message: "Not Found", documentation_url: DOCS, status: "404" }));
    }, options.port);
  },
};

/** The local GitHub as a running server (npm run dev, npm run demo's tests): its URL and how to stop it. */
export async function startLocalGitHub(options: LocalGitHubOptions = {}): Promise<{ url: string; stop(): Promise<void> }> {
  const server = await githubFake.start(options);
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
