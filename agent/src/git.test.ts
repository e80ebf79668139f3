import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGitServer } from "../../scripts/local-github/git-server.ts";
import { commitFiles } from "../../scripts/local-github/repositories.ts";
import { checkoutCommit, gitAuthEnv } from "./git.ts";
import { JobFailure } from "./job-context.ts";

// The agent's checkout against a real git smart-HTTP server (git http-backend), the way it clones from GitHub.

const TOKEN = "ghs_test0123456789abcdefTOKEN";
const root = mkdtempSync(join(tmpdir(), "stagely-git-"));
let server: Awaited<ReturnType<typeof startGitServer>>;
let first: string;
let second: string;
const asked: { token: string | null; repo: string }[] = [];

beforeAll(async () => {
  first = commitFiles(root, "acme/app", { branch: "main", files: { "version.txt": "first\n" }, message: "first" });
  second = commitFiles(root, "acme/app", { branch: "main", files: { "version.txt": "second\n", "added.txt": "added in the second\n" }, message: "second" });
  commitFiles(root, "acme/app", { branch: "main", files: { "version.txt": "third\n", "added.txt": "added in the second\n", "third.txt": "head\n" }, message: "third" });
  commitFiles(root, "acme/public", { branch: "main", files: { "README.md": "public\n" }, message: "public" });
  server = await startGitServer({
    root,
    authorize: (token, repo) => {
      asked.push({ token, repo });
      return repo === "acme/public" || token === TOKEN;
    },
  });
});
afterAll(async () => {
  await server?.stop();
  rmSync(root, { recursive: true, force: true });
});

const target = () => mkdtempSync(join(tmpdir(), "stagely-checkout-"));

/** Every file under `dir` (the whole .git included), read as text. */
function everything(dir: string): string {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .map((path) => join(dir, path))
    .filter((path) => statSync(path).isFile())
    .map((path) => readFileSync(path, "latin1"))
    .join("\n");
}

describe("checkoutCommit", () => {
  it("checks out exactly the commit asked for, not the branch head, with a shallow fetch", async () => {
    const dir = target();
    const lines: string[] = [];
    const sha = await checkoutCommit({ repoUrl: `${server.url}/acme/app.git`, commit: second, branch: "main", token: TOKEN, dir }, { onLine: (_s, l) => lines.push(l) });
    expect(sha).toBe(second);
    expect(readFileSync(join(dir, "version.txt"), "utf8")).toBe("second\n");
    expect(() => statSync(join(dir, "third.txt"))).toThrow();
    // Only that commit was fetched (a fetch of the branch would have brought its parent too).
    expect(execFileSync("git", ["-C", dir, "rev-list", "--count", "HEAD"], { encoding: "utf8" }).trim()).toBe("1");
    expect(asked.some((a) => a.token === TOKEN && a.repo === "acme/app")).toBe(true);
    expect(lines.join("\n")).not.toContain(TOKEN);
  });

  it("keeps the token off the disk, out of the remote URL and out of the arguments", async () => {
    const dir = target();
    await checkoutCommit({ repoUrl: `${server.url}/acme/app.git`, commit: first, branch: "main", token: TOKEN, dir });
    expect(readFileSync(join(dir, "version.txt"), "utf8")).toBe("first\n");
    const base64 = Buffer.from(`x-access-token:${TOKEN}`).toString("base64");
    const onDisk = everything(dir);
    expect(onDisk).not.toContain(TOKEN);
    expect(onDisk).not.toContain(base64);
    expect(execFileSync("git", ["-C", dir, "remote", "get-url", "origin"], { encoding: "utf8" }).trim()).toBe(`${server.url}/acme/app.git`);
    // The header is configuration in the environment, scoped to the repository's origin.
    const env = gitAuthEnv(`${server.url}/acme/app.git`, TOKEN);
    expect(env).toMatchObject({ GIT_CONFIG_COUNT: "1", GIT_CONFIG_KEY_0: `http.${server.url}/.extraHeader`, GIT_CONFIG_VALUE_0: `Authorization: Basic ${base64}` });
  });

  it("clones a public repository without a token", async () => {
    const dir = target();
    const [head] = execFileSync("git", ["--git-dir", join(root, "acme/public.git"), "rev-parse", "refs/heads/main"], { encoding: "utf8" }).split("\n");
    await checkoutCommit({ repoUrl: `${server.url}/acme/public`, commit: head!, branch: "main", token: null, dir });
    expect(readFileSync(join(dir, "README.md"), "utf8")).toBe("public\n");
  });

  it("fails with CLONE_FAILED, and never prompts, for a wrong token, no token, an unknown commit or a bad URL", async () => {
    const attempt = (overrides: Partial<Parameters<typeof checkoutCommit>[0]>) =>
      checkoutCommit({ repoUrl: `${server.url}/acme/app.git`, commit: first, branch: "main", token: TOKEN, dir: target(), ...overrides });
    for (const overrides of [{ token: "ghs_wrong" }, { token: null }, { commit: "0".repeat(40) }, { repoUrl: `${server.url}/acme/missing.git` }]) {
      const error = await attempt(overrides).catch((e: unknown) => e);
      expect(error, JSON.stringify(overrides)).toBeInstanceOf(JobFailure);
      expect((error as JobFailure).code).toBe("CLONE_FAILED");
      expect((error as JobFailure).message).not.toContain(TOKEN);
    }
    await expect(attempt({ repoUrl: "file:///etc" })).rejects.toThrow(/http/);
    await expect(attempt({ repoUrl: `http://user:pass@127.0.0.1:${server.port}/acme/app.git` })).rejects.toThrow(/credentials/);
    await expect(attempt({ commit: "--upload-pack=touch /tmp/x" })).rejects.toThrow(/hexadecimal/);
  });

  it("stops when the job is stopped", async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(
      checkoutCommit({ repoUrl: `${server.url}/acme/app.git`, commit: first, branch: "main", token: TOKEN, dir: target() }, { signal: controller.signal }),
    ).rejects.toThrow(/stopped/);
  });
});

describe("the git server", () => {
  it("refuses pushes and anything but the smart protocol", async () => {
    const push = await fetch(`${server.url}/acme/app.git/info/refs?service=git-receive-pack`, { headers: { Authorization: `Basic ${Buffer.from(`x-access-token:${TOKEN}`).toString("base64")}` } });
    expect(push.status).toBe(403);
    expect((await fetch(`${server.url}/acme/app.git/info/refs`)).status).toBe(403);
    expect((await fetch(`${server.url}/acme/../etc/passwd`)).status).toBe(404);
  });

  it("asks for credentials (401) without a token, and answers 404 to a token that may not read the repository", async () => {
    const refs = (auth?: string) => fetch(`${server.url}/acme/app.git/info/refs?service=git-upload-pack`, { headers: auth ? { Authorization: auth } : {} });
    const anonymous = await refs();
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("www-authenticate")).toContain("Basic");
    expect((await refs(`Basic ${Buffer.from("x-access-token:nope").toString("base64")}`)).status).toBe(404);
    const allowed = await refs(`Basic ${Buffer.from(`x-access-token:${TOKEN}`).toString("base64")}`);
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get("content-type")).toBe("application/x-git-upload-pack-advertisement");
  });
});
