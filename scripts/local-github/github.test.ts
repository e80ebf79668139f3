import { execFile } from "node:child_process";
import { createHmac } from "node:crypto";
import { createServer, type Server } from "node:http";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { importAppPrivateKey, signAppJwt } from "../../src/pipeline/github/app-jwt.ts";
import { GITHUB_APP_ID, githubAppPrivateKey, startLocalGitHub } from "./github.ts";
import { commitFiles } from "./repositories.ts";

// The local GitHub as npm run dev runs it: real git repositories, an installation, signed webhooks to a receiver.

// The server runs in this process: git must run asynchronously, or it would wait for a server it blocks.
const git = promisify(execFile);
const SECRET = "local-github-test-secret";
const root = mkdtempSync(join(tmpdir(), "stagely-local-github-"));
const received: { event: string; signature: string; body: string }[] = [];
let receiver: Server;
let github: Awaited<ReturnType<typeof startLocalGitHub>>;
let source: string;

async function appToken(): Promise<string> {
  const { jwt } = await signAppJwt(await importAppPrivateKey(githubAppPrivateKey()), GITHUB_APP_ID, Date.now());
  const response = await fetch(`${github.url}/app/installations/7/access_tokens`, { method: "POST", headers: { authorization: `Bearer ${jwt}` }, body: "{}" });
  expect(response.status).toBe(201);
  return ((await response.json()) as { token: string }).token;
}

const control = async (path: string, body: unknown) => {
  const response = await fetch(`${github.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as any };
};

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      received.push({ event: String(req.headers["x-github-event"]), signature: String(req.headers["x-hub-signature-256"]), body });
      res.writeHead(202, { "content-type": "application/json" }).end('{"status":"queued"}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  github = await startLocalGitHub({
    gitRoot: join(root, "served"),
    webhook: { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`, secret: SECRET },
    installations: [{ id: 7, account: "acme", repositories: [] }],
  });
  // A developer's own repository, with a feature branch.
  commitFiles(root, "work/app", { branch: "main", files: { "README.md": "main\n" }, message: "main" });
  source = join(root, "work", "app.git");
});
afterAll(async () => {
  await github?.stop();
  receiver?.close();
  rmSync(root, { recursive: true, force: true });
});

describe("the local GitHub", () => {
  let head: string;

  it("adds an imported repository to the installation with an installation_repositories webhook", async () => {
    const added = await control("/_fake/app/installations/7/repositories", { full_name: "acme/app", sender: "dev" });
    expect(added.status).toBe(200);
    expect(added.body.delivery.status).toBe(202);
    const hook = received.at(-1)!;
    expect(hook.event).toBe("installation_repositories");
    expect(hook.signature).toBe(`sha256=${createHmac("sha256", SECRET).update(hook.body).digest("hex")}`);
    expect(JSON.parse(hook.body)).toMatchObject({ action: "added", installation: { id: 7 }, repositories_added: [{ full_name: "acme/app" }], sender: { login: "dev" } });

    head = commitFiles(root, "work/app", { branch: "feature", files: { "README.md": "feature\n", "stagely.yaml": "version: 1\n" }, message: "feature" });
    const imported = await control("/_fake/repos/acme/app/import", { path: source, branch: "feature" });
    expect(imported).toMatchObject({ status: 200, body: { head_sha: head } });
  });

  it("serves contents at a commit and clones only for an installation token", async () => {
    const token = await appToken();
    const file = await fetch(`${github.url}/repos/acme/app/contents/stagely.yaml?ref=${head}`, { headers: { authorization: `token ${token}` } });
    expect(Buffer.from(((await file.json()) as { content: string }).content, "base64").toString("utf8")).toBe("version: 1\n");
    const missing = await fetch(`${github.url}/repos/acme/app/contents/stagely.yaml?ref=main`, { headers: { authorization: `token ${token}` } });
    expect(missing.status).toBe(404);

    const clone = join(root, "clone");
    await git("git", ["clone", "--quiet", "--branch", "feature", `http://x-access-token:${token}@${github.url.slice(7)}/acme/app.git`, clone]);
    expect(readFileSync(join(clone, "README.md"), "utf8")).toBe("feature\n");
    await expect(git("git", ["clone", "--quiet", `http://x-access-token:ghs_wrong@${github.url.slice(7)}/acme/app.git`, join(root, "denied")])).rejects.toThrow(/not found/i);
  });

  it("opens, synchronizes and closes a pull request with signed pull_request webhooks, and shows it as a page", async () => {
    const opened = await control("/_fake/repos/acme/app/pulls", { head: "feature", sender: "dev" });
    expect(opened.body).toMatchObject({ number: 1, head_sha: head, delivery: { status: 202 } });
    expect(JSON.parse(received.at(-1)!.body)).toMatchObject({ action: "opened", number: 1, installation: { id: 7 }, pull_request: { head: { sha: head, ref: "feature" } }, repository: { full_name: "acme/app" } });

    expect((await control("/_fake/repos/acme/app/pulls/1/synchronize", {})).status).toBe(422);
    const next = commitFiles(root, "work/app", { branch: "feature", files: { "README.md": "next\n" }, message: "next" });
    await control("/_fake/repos/acme/app/import", { path: source, branch: "feature" });
    expect((await control("/_fake/repos/acme/app/pulls/1/synchronize", {})).body).toMatchObject({ head_sha: next });
    expect(JSON.parse(received.at(-1)!.body)).toMatchObject({ action: "synchronize", pull_request: { head: { sha: next } } });

    const token = await appToken();
    const deployment = await fetch(`${github.url}/repos/acme/app/deployments`, {
      method: "POST",
      headers: { authorization: `token ${token}` },
      body: JSON.stringify({ ref: next, environment: "pr-1", required_contexts: [] }),
    });
    const { id } = (await deployment.json()) as { id: number };
    await fetch(`${github.url}/repos/acme/app/deployments/${id}/statuses`, {
      method: "POST",
      headers: { authorization: `token ${token}` },
      body: JSON.stringify({ state: "success", environment_url: "http://abc.preview.localhost:8787/", description: "<b>ready</b>" }),
    });
    await fetch(`${github.url}/repos/acme/app/issues/1/comments`, { method: "POST", headers: { authorization: `token ${token}` }, body: JSON.stringify({ body: "Preview ready" }) });

    const page = await (await fetch(`${github.url}/acme/app/pull/1`)).text();
    expect(page).toContain('<a href="http://abc.preview.localhost:8787/">View deployment</a>');
    expect(page).toContain("&#60;b&#62;ready&#60;/b&#62;");
    expect(page).toContain("Preview ready");
    expect(page).toContain("pull_request.synchronize");

    expect((await control("/_fake/repos/acme/app/pulls/1/close", {})).body).toMatchObject({ state: "closed" });
    expect(JSON.parse(received.at(-1)!.body)).toMatchObject({ action: "closed" });
  });
});
