import { execFile } from "node:child_process";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { previewRequest } from "../../scripts/lib/local-preview.ts";
import { startDevSession, type DevSession } from "./dev-session.ts";

// `npm run dev` and `npm run demo` exactly as a new user runs them (two terminals), on the agent simulator: a port
// of the test's own (everything else derives from PORT), a data folder and .dev.vars of its own.

const root = join(import.meta.dirname, "..", "..");
let session: DevSession;
let port = 0;
let home = "";
let devOutput = "";
const demo = (...args: string[]) => session.demo(...args);

const git = (cwd: string, ...args: string[]) =>
  new Promise<string>((resolve, reject) =>
    execFile("git", ["-C", cwd, ...args], { env: { ...process.env, GIT_AUTHOR_NAME: "Dev", GIT_AUTHOR_EMAIL: "dev@example.test", GIT_COMMITTER_NAME: "Dev", GIT_COMMITTER_EMAIL: "dev@example.test" } }, (error, stdout) =>
      error ? reject(error) : resolve(stdout.trim()),
    ),
  );

beforeAll(async () => {
  session = await startDevSession("simulator");
  ({ port, home } = session);
  devOutput = session.output();
}, 180_000);

afterAll(() => session?.stop(), 30_000);

describe("npm run dev, then npm run demo", () => {
  it("starts quietly on ports derived from PORT and prints what a user needs", () => {
    expect(devOutput).toContain(`Stagely API: http://127.0.0.1:${port}   docs: http://127.0.0.1:${port}/docs`);
    expect(devOutput).toContain(`local cloud: http://127.0.0.1:${port + 2}   GitHub: local, http://127.0.0.1:${port + 3}`);
    expect(devOutput).toMatch(/API token of the development user: stg_pat_/);
    expect(devOutput).toContain("npm run demo");
    expect(devOutput).toContain("the reaper runs every 5 minutes");
    for (const noise of [/workers\.cloudflare\.com/, /might be out of date/, /Your Worker has access/, /^env\./m, /⛅️/]) expect(devOutput).not.toMatch(noise);
  });

  it("previews the example app: registers it, opens a pull request, follows the build and ends with the preview's URL", async () => {
    const { code, output } = await demo();
    expect(code, output).toBe(0);
    expect(output).toMatch(/opened pull request #1 for demo at [0-9a-f]{12}/);
    expect(output).toMatch(/run run_\w+ \(pr_opened\): building/);
    expect(output).toMatch(/^ {2}(web|api)_amd64 \| /m);
    const ready = /^preview ready: (http:\/\/[a-z0-9]+\.preview\.localhost:(\d+)\/\S*)/m.exec(output);
    expect(ready, output).not.toBeNull();
    expect(Number(ready![2])).toBe(port);

    // The preview answers through the API's port (Node does not resolve *.localhost: the name goes in Host).
    const url = new URL(ready![1]!);
    const apiUrl = `http://127.0.0.1:${port}`;
    const shared = await previewRequest(apiUrl, url.host, `${url.pathname}${url.search}`);
    shared.body.resume();
    expect(shared.status).toBe(302);
    const cookie = String(shared.headers["set-cookie"]).split(";")[0]!;
    const page = await previewRequest(apiUrl, url.host, "/", { headers: { Cookie: cookie } });
    page.body.resume();
    expect(page.status).toBe(200);

    // What GitHub would show: the deployment with its link, and the bot's comment.
    const pull = await (await fetch(`http://127.0.0.1:${port + 3}/acme/demo-app/pull/1`)).text();
    expect(pull).toContain("The preview is ready");
    expect(pull).toContain("pull_request.opened");
  }, 240_000);

  it("previews a repository of the developer's own, follows a push, reports a failure with its reason, and closes", async () => {
    const repo = join(home, "my-app");
    cpSync(join(root, "examples", "demo-app"), repo, { recursive: true });
    await git(home, "init", "--quiet", "--initial-branch", "main", repo);
    await git(repo, "add", ".");
    await git(repo, "commit", "--quiet", "-m", "first");
    await git(repo, "checkout", "--quiet", "-b", "feature");
    writeFileSync(join(repo, "web", "www", "index.html"), "<h1>feature</h1>\n");
    await git(repo, "commit", "--quiet", "-am", "feature");

    const opened = await demo("--repo", repo, "--pr", "7");
    expect(opened.code, opened.output).toBe(0);
    expect(opened.output).toContain("opened pull request #7 for feature");
    expect(opened.output).toMatch(/^preview ready: http:\/\/[a-z0-9]+\.preview\.localhost:\d+\//m);

    // A push of a commit without stagely.yaml: synchronize, and the run fails saying why.
    await git(repo, "rm", "--quiet", "stagely.yaml");
    await git(repo, "commit", "--quiet", "-m", "no config");
    const broken = await demo("--repo", repo, "--push");
    expect(broken.code, broken.output).toBe(1);
    expect(broken.output).toMatch(/pushed [0-9a-f]{12} to pull request #7 \(synchronize\)/);
    expect(broken.output).toMatch(/the preview failed: .*stagely\.yaml/);

    const again = await demo("--repo", repo, "--push");
    expect(again.code).toBe(1);
    expect(again.output).toContain("commit something first");

    const closed = await demo("--repo", repo, "--close");
    expect(closed.code, closed.output).toBe(0);
    expect(closed.output).toMatch(/closed pull request #7/);
    expect(closed.output).toMatch(/environment env_\w+: terminated/);

    // The runs the webhooks started are in the team's audit log, by the GitHub user who sent them.
    const token = readFileSync(join(home, "dev", "dev-token"), "utf8").trim();
    const audit = (await (await fetch(`http://127.0.0.1:${port}/v1/teams/dev/audit-logs?limit=100`, { headers: { authorization: `Bearer ${token}` } })).json()) as {
      data: { action: string; actor: string | null; metadata: Record<string, unknown> }[];
    };
    const started = audit.data.filter((row) => row.action === "environment.run_started" && row.metadata.pr_number === 7);
    expect(started.map((row) => [row.metadata.trigger, row.metadata.sender])).toEqual(
      expect.arrayContaining([["pr_opened", "developer"], ["pr_synchronized", "developer"]]),
    );
  }, 300_000);

  it("README's project example creates a project that can preview: on the dev team's local cloud", async () => {
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const example = /-d '(\{"name": "Web"[^']*\})' http:\/\/127\.0\.0\.1:8787\/v1\/teams\/dev\/projects/.exec(readme);
    expect(example, "README's curl example creating a project").not.toBeNull();
    const token = readFileSync(join(home, "dev", "dev-token"), "utf8").trim();
    const created = await fetch(`http://127.0.0.1:${port}/v1/teams/dev/projects`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: example![1],
    });
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ repo_url: "https://github.com/acme/web", cloud_provider_id: "cp_localcloud000001" });
  });

  it("says what is wrong when the repository is not one", async () => {
    const { code, output } = await demo("--repo", join(home, "nothing-here"));
    expect(code).toBe(1);
    expect(output).toContain("is not a git repository");
  });
});
