import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { fakeUrl } from "../../test/fakes/urls.ts";
import { getConfig } from "../config.ts";
import { bytesToBase64, hmacSha256Hex } from "../lib/crypto.ts";
import { GitHubApp, githubAppFromConfig, isGitHubError, toRepoRef, verifyWebhookSignature, type GitHubAppOptions, type GitHubError } from "./github-app.ts";
import { pkcs1ToPkcs8, readPem } from "./github/app-jwt.ts";
import { errorFromResponse, redactCredentials } from "./github/errors.ts";
import { nextLink } from "./github/repo.ts";

const MARKER = "<!-- stagely:preview -->";
let github: string;
let appId: string;
let privateKey: string;

beforeAll(async () => {
  github = fakeUrl("github");
  const key = (await (await fetch(`${github}/_fake/app/private-key`)).json()) as { app_id: string; private_key: string };
  appId = key.app_id;
  privateKey = key.private_key;
});

/** A client with its own caches, configured like the Worker (GITHUB_API_URL from env) plus the App's id and key. */
function newApp(overrides: Partial<GitHubAppOptions> = {}): GitHubApp {
  return new GitHubApp({ appId, privateKey, apiUrl: getConfig(env).GITHUB_API_URL, ...overrides });
}

async function admin<T = any>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const response = await fetch(`${github}${path}`, { method, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
}

let repoCounter = 0;
/** A repository of its own for each test, with the App installed on it. */
async function installedRepo(options: { permissions?: Record<string, string>; token_lifetime_seconds?: number; extraRepos?: string[] } = {}) {
  const name = `web-${Date.now().toString(36)}-${repoCounter++}`;
  const fullName = `acme/${name}`;
  const { body } = await admin<{ id: number }>("POST", "/_fake/app/installations", {
    repositories: [fullName, ...(options.extraRepos ?? []).map((r) => `acme/${r}-${name}`)],
    permissions: options.permissions,
    token_lifetime_seconds: options.token_lifetime_seconds,
  });
  return { fullName, name, installationId: body.id };
}

async function seedFile(fullName: string, path: string, content: string, ref?: string) {
  expect((await admin("POST", `/_fake/repos/${fullName}/files`, { path, content, ref })).status).toBe(201);
}

async function requests(match: string): Promise<{ method: string; path: string; auth: string }[]> {
  return (await admin<{ requests: { method: string; path: string; auth: string }[] }>("GET", `/_fake/requests?match=${encodeURIComponent(match)}`)).body.requests;
}

async function fail(match: string, failure: Record<string, unknown>) {
  expect((await admin("POST", "/_fake/failures", { match, ...failure })).status).toBe(204);
}

async function installation(id: number) {
  return (await admin<{ tokens_issued: number; token_requests: unknown[] }>("GET", `/_fake/app/installations/${id}`)).body;
}

async function rejection(promise: Promise<unknown>): Promise<GitHubError> {
  try {
    await promise;
  } catch (error) {
    if (isGitHubError(error)) return error;
    throw error;
  }
  throw new Error("expected a GitHubError, the call succeeded");
}

function decodeJwtPart(part: string): Record<string, unknown> {
  return JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/"))) as Record<string, unknown>;
}

function pem(label: string, der: Uint8Array): string {
  const body = bytesToBase64(der).match(/.{1,64}/g)!.join("\n");
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

describe("App JWT and private keys", () => {
  it("signs RS256 with iat 60 s in the past, exp 10 minutes after iat, iss the App id, and GitHub accepts it", async () => {
    const before = Math.floor(Date.now() / 1000);
    const jwt = await newApp().appJwt();
    const [header, payload] = jwt.split(".") as [string, string, string];
    expect(decodeJwtPart(header)).toEqual({ alg: "RS256", typ: "JWT" });
    const claims = decodeJwtPart(payload) as { iat: number; exp: number; iss: number };
    expect(claims.iss).toBe(Number(appId));
    expect(claims.iat).toBeGreaterThanOrEqual(before - 61);
    expect(claims.iat).toBeLessThanOrEqual(before - 59 + 2);
    expect(claims.exp - claims.iat).toBe(600);
    const answer = await fetch(`${github}/app`, { headers: { Authorization: `Bearer ${jwt}` } });
    expect(answer.status).toBe(200);
    expect(((await answer.json()) as { id: number }).id).toBe(Number(appId));
  });

  it("reads the PKCS#1 key GitHub hands out and the same key as PKCS#8, also with literal \\n escapes", async () => {
    expect(privateKey).toContain("BEGIN RSA PRIVATE KEY");
    const pkcs8 = pem("PRIVATE KEY", pkcs1ToPkcs8(readPem(privateKey).der));
    const escaped = privateKey.trim().replace(/\n/g, "\\n");
    for (const key of [pkcs8, escaped]) {
      const { fullName } = await installedRepo();
      expect(await newApp({ privateKey: key }).installationId(fullName)).toBeGreaterThan(0);
    }
  });

  it("wraps PKCS#1 exactly as PKCS#8 PrivateKeyInfo (DER lengths of every size)", () => {
    const short = pkcs1ToPkcs8(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00]));
    expect([...short]).toEqual([0x30, 0x19, 0x02, 0x01, 0x00, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00, 0x04, 0x05, 0x30, 0x03, 0x02, 0x01, 0x00]);
    const long = pkcs1ToPkcs8(new Uint8Array(1190));
    // version (3) + algorithm (15) + OCTET STRING header (4) + 1190 = 1212 = 0x04bc
    expect([...long.subarray(0, 4)]).toEqual([0x30, 0x82, 0x04, 0xbc]);
    expect([...long.subarray(22, 26)]).toEqual([0x04, 0x82, 0x04, 0xa6]);
    expect(long).toHaveLength(1216);
  });

  it("is unauthorized, with a hint and no JWT in the message, when GitHub does not know the key", async () => {
    const other = (await crypto.subtle.generateKey(
      { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
      true,
      ["sign", "verify"],
    )) as CryptoKeyPair;
    const otherPem = pem("PRIVATE KEY", new Uint8Array((await crypto.subtle.exportKey("pkcs8", other.privateKey)) as ArrayBuffer));
    const { fullName } = await installedRepo();
    const error = await rejection(newApp({ privateKey: otherPem }).installationId(fullName));
    expect(error.kind).toBe("unauthorized");
    expect(error.status).toBe(401);
    expect(error.message).toBe(
      `GitHub answered 401 to GET /repos/${fullName}/installation: A JSON web token could not be decoded (check GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY and the server clock)`,
    );
  });

  it("is unauthorized when the clock is off: a JWT older than 10 minutes, or issued in the future", async () => {
    const { fullName } = await installedRepo();
    const late = await rejection(newApp({ now: () => Date.now() - 11 * 60_000 }).installationId(fullName));
    expect(late.kind).toBe("unauthorized");
    expect(late.message).toContain("'Expiration time' claim ('exp') must be a numeric value representing the future time");
    const early = await rejection(newApp({ now: () => Date.now() + 5 * 60_000 }).installationId(fullName));
    expect(early.kind).toBe("unauthorized");
    expect(early.message).toContain("'Issued at' claim ('iat') must be an Integer");
  });

  it("is misconfigured without an App id or key, or with a key that is not an RSA PEM", async () => {
    for (const options of [{ appId: "" }, { privateKey: "" }]) {
      expect(() => newApp(options)).toThrow(expect.objectContaining({ kind: "misconfigured" }));
    }
    expect(() => githubAppFromConfig({ GITHUB_API_URL: "https://api.github.com", GITHUB_APP_ID: undefined, GITHUB_APP_PRIVATE_KEY: undefined })).toThrow(
      "the GitHub App is not configured on this server (GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY)",
    );
    const bad = ["not a key", "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----", pem("PRIVATE KEY", new Uint8Array(200).fill(0x30)), privateKey.replace("BEGIN RSA", "BEGIN EC")];
    for (const key of bad) {
      const error = await rejection(newApp({ privateKey: key }).appJwt());
      expect(error.kind).toBe("misconfigured");
      expect(error.message).toBe("GITHUB_APP_PRIVATE_KEY is not a PEM RSA private key (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)");
    }
  });

  it("builds one client per config from the Worker's settings", async () => {
    const config = { ...getConfig(env), GITHUB_APP_ID: appId, GITHUB_APP_PRIVATE_KEY: privateKey };
    const app = githubAppFromConfig(config);
    expect(githubAppFromConfig(config)).toBe(app);
    expect(app.apiUrl).toBe(github);
    const { fullName, installationId } = await installedRepo();
    expect(await app.installationId(fullName)).toBe(installationId);
  });
});

describe("installations and tokens", () => {
  it("finds the installation of a repository once, then from the cache", async () => {
    const { fullName, installationId } = await installedRepo();
    const app = newApp();
    expect(await app.installationId(fullName)).toBe(installationId);
    expect(await app.installationId(`https://github.com/${fullName}.git`)).toBe(installationId);
    expect(await requests(`GET /repos/${fullName}/installation`)).toEqual([{ method: "GET", path: `/repos/${fullName}/installation`, auth: "jwt" }]);
  });

  it("takes the installation id from a webhook payload without asking GitHub", async () => {
    const { fullName, name, installationId } = await installedRepo();
    await seedFile(fullName, "stagely.yaml", "version: 2\n");
    expect(await newApp().getFileContent({ owner: "acme", name, installationId }, "stagely.yaml", "main")).toBe("version: 2\n");
    expect(await requests(`GET /repos/${fullName}/installation`)).toEqual([]);
  });

  it("says not_found when the App is not installed on the repository", async () => {
    const error = await rejection(newApp().installationId("acme/never-installed"));
    expect(error.kind).toBe("not_found");
    expect(error.message).toBe("the GitHub App is not installed on acme/never-installed (or cannot see it)");
  });

  it("caches installation tokens per installation and shares one request between concurrent callers", async () => {
    const { installationId } = await installedRepo();
    const app = newApp();
    const [a, b, c] = await Promise.all([app.installationToken(installationId), app.installationToken(installationId), app.installationToken(installationId)]);
    expect(a!.token).toMatch(/^ghs_/);
    expect(new Set([a!.token, b!.token, c!.token]).size).toBe(1);
    expect((await app.installationToken(installationId)).token).toBe(a!.token);
    expect(Date.parse(a!.expiresAt) - Date.now()).toBeGreaterThan(55 * 60_000);
    expect((await installation(installationId)).tokens_issued).toBe(1);
  });

  it("mints a new token when the cached one expires within 5 minutes", async () => {
    const fresh = await installedRepo({ token_lifetime_seconds: 360 });
    const app = newApp();
    await app.installationToken(fresh.installationId);
    await app.installationToken(fresh.installationId);
    expect((await installation(fresh.installationId)).tokens_issued).toBe(1);

    const shortLived = await installedRepo({ token_lifetime_seconds: 240 });
    const first = await app.installationToken(shortLived.installationId);
    const second = await app.installationToken(shortLived.installationId);
    expect(second.token).not.toBe(first.token);
    expect((await installation(shortLived.installationId)).tokens_issued).toBe(2);
  });

  it("replaces a revoked token once and retries the call", async () => {
    const { fullName, installationId } = await installedRepo();
    await seedFile(fullName, "a.txt", "A");
    const app = newApp();
    expect(await app.getFileContent(fullName, "a.txt", "main")).toBe("A");
    expect((await admin("DELETE", `/_fake/app/installations/${installationId}/tokens`)).status).toBe(204);
    expect(await app.getFileContent(fullName, "a.txt", "main")).toBe("A");
    expect((await installation(installationId)).tokens_issued).toBe(2);
  });

  it("mints a clone token per call, scoped to the one repository with contents:read", async () => {
    const { fullName, name, installationId } = await installedRepo({ extraRepos: ["other"] });
    await seedFile(fullName, "README.md", "hello");
    const app = newApp();
    const clone = await app.cloneToken(fullName);
    const again = await app.cloneToken(fullName);
    expect(clone.token).toMatch(/^ghs_/);
    expect(again.token).not.toBe(clone.token);
    expect(Date.parse(clone.expiresAt) - Date.now()).toBeGreaterThan(55 * 60_000);
    expect((await installation(installationId)).token_requests).toEqual([
      { repositories: [name], permissions: { contents: "read" } },
      { repositories: [name], permissions: { contents: "read" } },
    ]);
    const as = (path: string, init: RequestInit = {}) => fetch(`${github}${path}`, { ...init, headers: { Authorization: `token ${clone.token}` } });
    expect((await as(`/repos/${fullName}/contents/README.md`)).status).toBe(200);
    expect((await as(`/repos/acme/other-${name}/contents/README.md`)).status).toBe(404);
    expect((await as(`/repos/${fullName}/deployments`, { method: "POST", body: JSON.stringify({ ref: "main", required_contexts: [] }) })).status).toBe(403);
  });
});

describe("getFileContent", () => {
  it("answers the decoded text at a ref, null when the file does not exist", async () => {
    const { fullName } = await installedRepo();
    const yaml = "version: 2\n# café, 日本語, €\nbuilds: {}\n".repeat(20);
    await seedFile(fullName, "stagely.yaml", yaml, "0123456789abcdef0123456789abcdef01234567");
    await seedFile(fullName, "stagely.yaml", "version: 1\n", "main");
    await seedFile(fullName, "dir with space/ä#?.yaml", "odd");
    const app = newApp();
    expect(await app.getFileContent(fullName, "stagely.yaml", "0123456789abcdef0123456789abcdef01234567")).toBe(yaml);
    expect(await app.getFileContent(fullName, "/stagely.yaml", "main")).toBe("version: 1\n");
    expect(await app.getFileContent(fullName, "stagely.yaml", "")).toBe("version: 1\n");
    expect(await app.getFileContent(fullName, "dir with space/ä#?.yaml", "main")).toBe("odd");
    expect(await app.getFileContent(fullName, "missing.yaml", "main")).toBeNull();
    expect(await app.getFileContent(fullName, "stagely.yaml", "feature/none")).toBeNull();
  });

  it("refuses directories and bad paths, and says not_found when the App is not installed", async () => {
    const { fullName } = await installedRepo();
    await seedFile(fullName, "config/stagely.yaml", "x");
    const app = newApp();
    expect((await rejection(app.getFileContent(fullName, "config", "main"))).message).toBe(`config in ${fullName} is a directory, not a file`);
    expect((await rejection(app.getFileContent(fullName, "../secrets", "main"))).kind).toBe("invalid");
    expect((await rejection(app.getFileContent(fullName, "", "main"))).kind).toBe("invalid");
    expect((await rejection(app.getFileContent("acme/not-installed", "stagely.yaml", "main"))).kind).toBe("not_found");
  });

  it("is unauthorized when the installation lacks the contents permission", async () => {
    const { fullName } = await installedRepo({ permissions: { metadata: "read", deployments: "write" } });
    await seedFile(fullName, "stagely.yaml", "x");
    const error = await rejection(newApp().getFileContent(fullName, "stagely.yaml", "main"));
    expect(error.kind).toBe("unauthorized");
    expect(error.status).toBe(403);
    expect(error.message).toBe(`GitHub answered 403 to GET /repos/${fullName}/contents/stagely.yaml: Resource not accessible by integration`);
  });
});

describe("failures are classified", () => {
  it("5xx is transient and retryable", async () => {
    const { fullName } = await installedRepo();
    await fail(`GET /repos/${fullName}/contents`, { status: 502, message: "Server Error" });
    const error = await rejection(newApp().getFileContent(fullName, "stagely.yaml", "main"));
    expect(error).toMatchObject({ kind: "transient", status: 502, retryable: true });
  });

  it("a primary rate limit (403, x-ratelimit-remaining: 0) waits until x-ratelimit-reset", async () => {
    const { fullName } = await installedRepo();
    const reset = Math.floor(Date.now() / 1000) + 120;
    await fail(`GET /repos/${fullName}/contents`, { status: 403, message: "API rate limit exceeded for installation ID 1.", headers: { "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(reset) } });
    const error = await rejection(newApp().getFileContent(fullName, "stagely.yaml", "main"));
    expect(error.kind).toBe("rate_limited");
    expect(error.retryable).toBe(true);
    expect(error.retryAfterSeconds).toBeGreaterThanOrEqual(118);
    expect(error.retryAfterSeconds).toBeLessThanOrEqual(120);
  });

  it("a secondary rate limit (429 with retry-after) waits what GitHub says", async () => {
    const { fullName } = await installedRepo();
    await fail(`POST /repos/${fullName}/issues`, { status: 429, message: "You have exceeded a secondary rate limit.", headers: { "retry-after": "30" } });
    const error = await rejection(newApp().upsertPullRequestComment(fullName, 3, "hi", MARKER, { existingCommentId: 1 }));
    // The PATCH of a missing comment falls back to listing, then the POST is rate limited.
    expect(error).toMatchObject({ kind: "rate_limited", retryAfterSeconds: 30 });
  });

  it("a rate limit on the token request is rate_limited too", async () => {
    const { fullName, installationId } = await installedRepo();
    await fail(`POST /app/installations/${installationId}/access_tokens`, { status: 403, message: "You have exceeded a secondary rate limit" });
    const error = await rejection(newApp().getFileContent(fullName, "x", "main"));
    expect(error).toMatchObject({ kind: "rate_limited", retryAfterSeconds: 60 });
  });

  it("a dropped connection and a hanging GitHub are transient", async () => {
    const { fullName } = await installedRepo();
    await fail(`GET /repos/${fullName}/contents/a`, { mode: "reset" });
    expect(await rejection(newApp().getFileContent(fullName, "a", "main"))).toMatchObject({ kind: "transient", message: `could not reach GitHub for GET /repos/${fullName}/contents/a` });
    await fail(`GET /repos/${fullName}/contents/b`, { mode: "hang" });
    const hung = await rejection(newApp({ timeoutMs: 300 }).getFileContent(fullName, "b", "main"));
    expect(hung).toMatchObject({ kind: "transient", message: `GitHub did not answer GET /repos/${fullName}/contents/b within 0.3 s` });
  });

  it("never puts a token in a message, even one GitHub echoes", async () => {
    const { fullName, installationId } = await installedRepo();
    const app = newApp();
    const { token } = await app.installationToken(installationId);
    await fail(`GET /repos/${fullName}/contents`, { status: 500, message: `bad token ${token} and jwt eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOjF9.c2ln` });
    const error = await rejection(app.getFileContent(fullName, "stagely.yaml", "main"));
    expect(error.message).toBe(`GitHub answered 500 to GET /repos/${fullName}/contents/stagely.yaml: bad token *** and jwt ***`);
    expect(error.message).not.toContain(token);
  });

  it("maps statuses to kinds", () => {
    const answer = (status: number, headers: Record<string, string> = {}) => new Response(null, { status, headers });
    const kind = (status: number, body: unknown = {}, headers: Record<string, string> = {}) => errorFromResponse(answer(status, headers), body, "GET /x").kind;
    expect(kind(401)).toBe("unauthorized");
    expect(kind(403, { message: "Resource not accessible by integration" })).toBe("unauthorized");
    expect(kind(403, { message: "You have exceeded a secondary rate limit." })).toBe("rate_limited");
    expect(kind(403, {}, { "retry-after": "5" })).toBe("rate_limited");
    expect(kind(404)).toBe("not_found");
    expect(kind(410)).toBe("not_found");
    expect(kind(409)).toBe("invalid");
    expect(kind(422)).toBe("invalid");
    expect(kind(500)).toBe("transient");
    expect(kind(503)).toBe("transient");
    expect(redactCredentials(`x ghs_16C7e42F292c6912E7710c838347Ae178B4a y ghp_abcdefghijklmnop z`)).toBe("x *** y *** z");
    expect(redactCredentials("x".repeat(500))).toHaveLength(301);
  });
});

describe("deployments", () => {
  it("creates a transient, non-production deployment that skips checks and auto-merge, then reports statuses", async () => {
    const { fullName } = await installedRepo();
    const app = newApp();
    const sha = "89abcdef0123456789abcdef0123456789abcdef";
    const deployment = await app.createDeployment(fullName, { ref: sha, environment: "preview/pr-7", description: "Stagely preview", payload: { environment_id: "env_123" } });
    expect(deployment).toMatchObject({ ref: sha, sha, environment: "preview/pr-7" });
    expect(deployment.id).toBeGreaterThan(0);

    const progress = await app.createDeploymentStatus(fullName, deployment.id, { state: "in_progress", log_url: "https://stagely.test/runs/run_1", description: "Building" });
    expect(progress.state).toBe("in_progress");
    const long = "d".repeat(200);
    const success = await app.createDeploymentStatus(fullName, deployment.id, { state: "success", environment_url: "https://abc.preview.example.com", description: long });
    expect(success).toMatchObject({ state: "success" });
    expect(success.id).toBeGreaterThan(progress.id);

    const [recorded] = (await admin<any[]>("GET", `/_fake/repos/${fullName}/deployments`)).body;
    expect(recorded.request).toEqual({
      ref: sha,
      environment: "preview/pr-7",
      description: "Stagely preview",
      payload: { environment_id: "env_123" },
      auto_merge: false,
      required_contexts: [],
      transient_environment: true,
      production_environment: false,
    });
    expect(recorded).toMatchObject({ id: deployment.id, transient_environment: true, production_environment: false });
    expect(recorded.statuses.map((s: any) => [s.state, s.environment_url, s.log_url, s.description])).toEqual([
      ["in_progress", "", "https://stagely.test/runs/run_1", "Building"],
      ["success", "https://abc.preview.example.com", "", `${"d".repeat(139)}…`],
    ]);
  });

  it("refuses bad input before calling GitHub, and classifies GitHub's refusals", async () => {
    const { fullName } = await installedRepo();
    const app = newApp();
    expect((await rejection(app.createDeployment(fullName, { ref: "", environment: "preview" }))).kind).toBe("invalid");
    expect((await rejection(app.createDeploymentStatus(fullName, 1, { state: "done" as never }))).kind).toBe("invalid");
    expect((await rejection(app.createDeploymentStatus(fullName, 1, { state: "success", environment_url: "javascript:alert(1)" }))).kind).toBe("invalid");
    expect((await rejection(app.createDeploymentStatus(fullName, 0, { state: "success" }))).kind).toBe("invalid");
    expect(await requests(`POST /repos/${fullName}/deployments`)).toEqual([]);
    expect((await rejection(app.createDeploymentStatus(fullName, 12345, { state: "success" }))).kind).toBe("not_found");
    await fail(`POST /repos/${fullName}/deployments`, { status: 422, message: "No ref found for: nope" });
    expect(await rejection(app.createDeployment(fullName, { ref: "nope", environment: "preview" }))).toMatchObject({ kind: "invalid", status: 422 });
  });
});

describe("upsertPullRequestComment", () => {
  it("posts once, then updates the same comment", async () => {
    const { fullName } = await installedRepo();
    const app = newApp();
    const first = await app.upsertPullRequestComment(fullName, 12, "Preview is building", MARKER);
    expect(first.created).toBe(true);
    expect(first.htmlUrl).toBe(`https://github.com/${fullName}/pull/12#issuecomment-${first.id}`);
    const second = await app.upsertPullRequestComment(fullName, 12, `${MARKER}\nPreview ready: https://x.preview.example.com`, MARKER);
    expect(second).toEqual({ id: first.id, htmlUrl: first.htmlUrl, created: false });
    const comments = (await admin<any[]>("GET", `/_fake/repos/${fullName}/issues/12/comments`)).body;
    expect(comments.map((c) => c.body)).toEqual([`${MARKER}\nPreview ready: https://x.preview.example.com`]);
    expect(comments[0].user.type).toBe("Bot");
  });

  it("follows the Link header to find its comment and ignores a person's comment quoting the marker", async () => {
    const { fullName } = await installedRepo();
    for (let i = 0; i < 120; i++) {
      await admin("POST", `/_fake/repos/${fullName}/issues/5/comments`, { body: i === 3 ? `someone pasted ${MARKER}` : `comment ${i}` });
    }
    const bot = (await admin<{ id: number }>("POST", `/_fake/repos/${fullName}/issues/5/comments`, { body: `${MARKER}\nold`, user: { login: "stagely-test[bot]", type: "Bot" } })).body;
    await admin("POST", `/_fake/repos/${fullName}/issues/5/comments`, { body: "after" });
    const updated = await newApp().upsertPullRequestComment(fullName, 5, "new", MARKER);
    expect(updated).toMatchObject({ id: bot.id, created: false });
    expect((await requests(`GET /repos/${fullName}/issues/5/comments`)).map((r) => r.path)).toEqual([
      `/repos/${fullName}/issues/5/comments?per_page=100`,
      `/repos/${fullName}/issues/5/comments?per_page=100&page=2`,
    ]);
    const comments = (await admin<any[]>("GET", `/_fake/repos/${fullName}/issues/5/comments`)).body;
    expect(comments.find((c) => c.id === bot.id).body).toBe(`${MARKER}\nnew`);
    expect(comments.find((c) => c.body.startsWith("someone pasted")).body).toBe(`someone pasted ${MARKER}`);
    expect(comments).toHaveLength(122);
  });

  it("with existingCommentId patches directly, and posts anew when that comment was deleted", async () => {
    const { fullName } = await installedRepo();
    const app = newApp();
    const first = await app.upsertPullRequestComment(fullName, 9, "one", MARKER);
    const second = await app.upsertPullRequestComment(fullName, 9, "two", MARKER, { existingCommentId: first.id });
    expect(second).toMatchObject({ id: first.id, created: false });
    expect(await requests(`GET /repos/${fullName}/issues/9/comments`)).toHaveLength(1); // only the first upsert searched

    expect((await admin("DELETE", `/_fake/repos/${fullName}/issues/comments/${first.id}`)).status).toBe(204);
    const third = await app.upsertPullRequestComment(fullName, 9, "three", MARKER, { existingCommentId: first.id });
    expect(third.created).toBe(true);
    expect(third.id).not.toBe(first.id);
    expect((await admin<any[]>("GET", `/_fake/repos/${fullName}/issues/9/comments`)).body.map((c) => c.body)).toEqual([`${MARKER}\nthree`]);
  });

  it("refuses a marker that would be visible, and bad numbers", async () => {
    const { fullName } = await installedRepo();
    const app = newApp();
    expect((await rejection(app.upsertPullRequestComment(fullName, 1, "x", "stagely"))).kind).toBe("invalid");
    expect((await rejection(app.upsertPullRequestComment(fullName, 1, "x", "<!-- -->"))).kind).toBe("invalid");
    expect((await rejection(app.upsertPullRequestComment(fullName, -1, "x", MARKER))).kind).toBe("invalid");
    expect((await rejection(app.upsertPullRequestComment(fullName, 1, "x".repeat(70_000), MARKER))).kind).toBe("invalid");
  });

  it("refuses to follow a pagination link to another host", async () => {
    const { fullName, installationId } = await installedRepo();
    const app = newApp({
      fetch: async (input, init) => {
        const response = await fetch(input, init);
        if (!String(input).includes("/issues/4/comments")) return response;
        return new Response(await response.text(), { status: 200, headers: { link: '<https://evil.example.com/steal?page=2>; rel="next"' } });
      },
    });
    await app.installationToken(installationId);
    expect((await rejection(app.upsertPullRequestComment(fullName, 4, "x", MARKER))).message).toBe(
      `GitHub sent a pagination link for GET /repos/${fullName}/issues/4/comments to another host`,
    );
  });
});

describe("verifyWebhookSignature", () => {
  const secret = "webhook-secret-for-tests";
  const body = '{"action":"opened","number":1}';

  it("accepts GitHub's sha256=<hex> of the raw body, as text or bytes", async () => {
    const header = `sha256=${await hmacSha256Hex(secret, body)}`;
    const bytes = new TextEncoder().encode(body);
    expect(await verifyWebhookSignature(secret, body, header)).toBe(true);
    expect(await verifyWebhookSignature(secret, bytes, header)).toBe(true);
    expect(await verifyWebhookSignature(secret, bytes.buffer as ArrayBuffer, header)).toBe(true);
    expect(await verifyWebhookSignature(secret, body, header.toUpperCase().replace("SHA256=", "sha256="))).toBe(true);
  });

  it("rejects a wrong secret, a changed body and malformed or missing headers", async () => {
    const hex = await hmacSha256Hex(secret, body);
    expect(await verifyWebhookSignature("other-secret", body, `sha256=${hex}`)).toBe(false);
    expect(await verifyWebhookSignature(secret, `${body} `, `sha256=${hex}`)).toBe(false);
    for (const header of [undefined, null, "", hex, `sha1=${hex}`, `sha256=${hex.slice(1)}`, `sha256=${hex}00`, `sha256=${"z".repeat(64)}`]) {
      expect(await verifyWebhookSignature(secret, body, header)).toBe(false);
    }
    expect(await verifyWebhookSignature("", body, `sha256=${hex}`)).toBe(false);
  });
});

describe("repository references", () => {
  it("accepts owner/name, GitHub URLs and RepoRefs", () => {
    expect(toRepoRef("acme/web")).toEqual({ owner: "acme", name: "web" });
    expect(toRepoRef("https://github.com/acme/web.git")).toEqual({ owner: "acme", name: "web" });
    expect(toRepoRef("https://github.com/acme/my.repo/")).toEqual({ owner: "acme", name: "my.repo" });
    expect(toRepoRef({ owner: "acme", name: "web", installationId: 7 })).toEqual({ owner: "acme", name: "web", installationId: 7 });
  });

  it("refuses anything else as invalid", () => {
    for (const input of ["acme", "acme/web/extra", "../web", "acme/..", "-acme/web", "acme/we b", "", { owner: "acme", name: "web", installationId: -1 }, null]) {
      expect(() => toRepoRef(input as never)).toThrow(expect.objectContaining({ kind: "invalid" }));
    }
  });

  it("reads rel=next from a Link header", () => {
    const header = '<https://api.github.com/x?page=1>; rel="prev", <https://api.github.com/x?page=3>; rel="next", <https://api.github.com/x?page=9>; rel="last"';
    expect(nextLink(header)).toBe("https://api.github.com/x?page=3");
    expect(nextLink('<https://api.github.com/x?page=9>; rel="last"')).toBeUndefined();
    expect(nextLink(null)).toBeUndefined();
    expect(nextLink('<https://a/b>; rel="nextish"')).toBeUndefined();
  });
});
