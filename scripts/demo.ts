// npm run demo -- [--repo <path to a git repository>] [--branch <name>] [--pr <number>] [--push] [--close]
// Against a running `npm run dev` (its local GitHub): registers the repository with the local GitHub (adding it to
// the development team's App installation), makes sure the dev team has a project for it on the local cloud, opens a
// pull request for the branch's head commit (a signed pull_request webhook through the real webhook route), then
// follows the environment, printing the run's progress and build log lines, and ends with `preview ready: <url>`
// (exit 0) or the failure reason (exit 1). --push sends the branch's new head (synchronize); --close closes the pull
// request. Without --repo it previews examples/demo-app.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { DEV_INSTALLATION, DEV_PROVIDER_ID } from "./lib/dev-seed.ts";
import { localPreviewLink } from "./lib/dev-previews.ts";
import { devDir, readDevState } from "./lib/dev-settings.ts";
import { bareRepository, commitFiles } from "./local-github/repositories.ts";

const EXAMPLE = join(import.meta.dirname, "..", "examples", "demo-app");
const say = (text: string) => console.log(`[demo] ${text}`);
class DemoFailure extends Error {}
const fail = (text: string): never => {
  throw new DemoFailure(text);
};

const { values } = parseArgs({
  options: {
    repo: { type: "string" },
    branch: { type: "string" },
    pr: { type: "string" },
    push: { type: "boolean", default: false },
    close: { type: "boolean", default: false },
    timeout: { type: "string", default: "600" },
  },
});

async function main(): Promise<number> {
  if (values.push && values.close) fail("--push and --close do not go together");
  const pr = values.pr === undefined ? undefined : Number(values.pr);
  if (pr !== undefined && (!Number.isInteger(pr) || pr < 1)) fail(`--pr must be a pull request number, not "${values.pr}"`);
  const timeoutMs = Number(values.timeout) * 1000;
  if (!(timeoutMs > 0)) fail(`--timeout must be a number of seconds, not "${values.timeout}"`);

  const dir = devDir();
  const state = readDevState(dir);
  if (typeof state === "string") return fail(state);
  if (!(await fetch(`${state.api_url}/ready`).then((r) => r.ok, () => false))) fail(`npm run dev does not answer at ${state.api_url}: is it still running?`);
  if (!state.github_url) fail("npm run demo needs the local GitHub, and this npm run dev uses a real GitHub App (configured in .dev.vars): open a pull request on GitHub instead");
  const github = state.github_url!;
  const token = readFileSync(state.token_file, "utf8").trim();

  const api = async (method: string, path: string, body?: unknown): Promise<any> => {
    const response = await fetch(`${state.api_url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const answer = (await response.json().catch(() => null)) as any;
    if (!response.ok) fail(`${method} ${path} answered ${response.status}: ${answer?.error?.message ?? JSON.stringify(answer)}`);
    return answer;
  };
  const control = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> => {
    const response = await fetch(`${github}${path}`, { method, headers: { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: response.status, body: await response.json().catch(() => null) };
  };

  // The repository: the developer's, or the example committed into a repository of the demo's own.
  const { source, name, branch } = values.repo ? ownRepository(values.repo) : exampleRepository(dir, values.branch ?? "demo", values.push);
  const fullName = `acme/${name}`;
  say(`repository ${source}, branch ${branch} → ${fullName} on the local GitHub (${github}/${fullName})`);

  const added = await control("POST", `/_fake/app/installations/${DEV_INSTALLATION.id}/repositories`, { full_name: fullName, sender: "developer" });
  if (added.status !== 200) fail(`the local GitHub did not add ${fullName} to the App's installation: ${JSON.stringify(added.body)}`);
  const delivery = added.body.delivery as { status: number; body: string } | null;
  if (delivery && (delivery.status < 200 || delivery.status > 299)) fail(`Stagely refused the installation_repositories webhook (${delivery.status}): ${delivery.body}`);
  const imported = await control("POST", `/_fake/repos/${fullName}/import`, { path: source, branch });
  if (imported.status !== 200) fail(imported.body?.message ?? `the import answered ${imported.status}`);
  const headSha = imported.body.head_sha as string;

  const project = await ensureProject(api, fullName, name);
  say(`project ${project.slug} (${project.id}) of team dev, on the local cloud`);

  const pulls = (await control("GET", `/_fake/repos/${fullName}/pulls`)).body as { number: number; state: string; head: { ref: string; sha: string } }[];
  const mine = pulls.find((p) => (pr === undefined ? p.head.ref === branch : p.number === pr));
  let number: number;
  if (values.close) {
    if (!mine || mine.state !== "open") return fail(`no open pull request ${pr ? `#${pr}` : `for branch ${branch}`} in ${fullName}`);
    await pullRequestAction(control, `/_fake/repos/${fullName}/pulls/${mine.number}/close`, {});
    say(`closed pull request #${mine.number}`);
    return followTeardown(api, project.id, mine.number, timeoutMs);
  }
  if (mine?.state === "open") {
    number = mine.number;
    if (mine.head.sha !== headSha) {
      await pullRequestAction(control, `/_fake/repos/${fullName}/pulls/${number}/synchronize`, { sender: "developer" });
      say(`pushed ${headSha.slice(0, 12)} to pull request #${number} (synchronize)`);
    } else {
      if (values.push) fail(`branch ${branch} is still at ${headSha.slice(0, 12)}, the head of pull request #${number}: commit something first`);
      say(`pull request #${number} is already open at ${headSha.slice(0, 12)}: following its preview`);
    }
  } else {
    if (values.push) fail(`no open pull request for branch ${branch}: run npm run demo without --push to open one`);
    const opened = await pullRequestAction(control, `/_fake/repos/${fullName}/pulls`, { head: branch, number: pr, sender: "developer" });
    number = opened.number;
    say(`opened pull request #${number} for ${branch} at ${headSha.slice(0, 12)}: ${opened.html_url}`);
  }
  return followPreview(api, state, token, project.id, project.preview_access, number, headSha, timeoutMs);
}

function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", ["-C", cwd, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

function ownRepository(path: string): { source: string; name: string; branch: string } {
  const source = resolve(path);
  try {
    git(source, "rev-parse", "--git-dir");
  } catch {
    fail(`--repo ${path} is not a git repository`);
  }
  const branch = values.branch ?? git(source, "symbolic-ref", "--short", "HEAD");
  const name = basename(source).replace(/\.git$/, "").toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^[.-]+/, "") || "app";
  return { source, name, branch };
}

/** examples/demo-app committed on `branch` of a repository under the dev data folder (again with --push). */
function exampleRepository(dir: string, branch: string, push: boolean): { source: string; name: string; branch: string } {
  const root = join(dir, "demo-source");
  const repo = "local/demo-app";
  const exists = existsSync(bareRepository(root, repo)) && (() => {
    try {
      git(join(root, `${repo}.git`), "rev-parse", "--verify", "--quiet", `refs/heads/${branch}`);
      return true;
    } catch {
      return false;
    }
  })();
  if (!exists || push) {
    const files: Record<string, string> = {};
    for (const path of readdirSync(EXAMPLE, { recursive: true, encoding: "utf8" })) {
      const full = join(EXAMPLE, path);
      if (statSync(full).isFile()) files[relative(EXAMPLE, full)] = readFileSync(full, "utf8");
    }
    commitFiles(root, repo, { branch, files, message: push ? "Update the demo app" : "The demo app" });
  }
  return { source: join(root, `${repo}.git`), name: "demo-app", branch };
}

/** The dev team's project of the repository (made on the local cloud). */
async function ensureProject(api: (method: string, path: string, body?: unknown) => Promise<any>, fullName: string, name: string): Promise<{ id: string; slug: string; preview_access: string }> {
  const repoUrl = `https://github.com/${fullName}`;
  for (let cursor: string | null = ""; cursor !== null; ) {
    const page = await api("GET", `/v1/teams/dev/projects?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    const found = (page.data as { id: string; slug: string; repo_url: string; preview_access: string }[]).find((p) => p.repo_url === repoUrl);
    if (found) return found;
    cursor = page.next_cursor;
  }
  return api("POST", "/v1/teams/dev/projects", { name, repo_url: fullName, cloud_provider_id: DEV_PROVIDER_ID });
}

async function pullRequestAction(control: (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }>, path: string, body: unknown): Promise<any> {
  const answer = await control("POST", path, body);
  if (answer.status !== 200) fail(answer.body?.message ?? `the local GitHub answered ${answer.status}`);
  const delivery = answer.body.delivery as { status: number; body: string } | null;
  if (!delivery || delivery.status < 200 || delivery.status > 299) fail(`Stagely did not take the pull_request webhook (${delivery?.status ?? "not delivered"}): ${delivery?.body ?? ""}`);
  return answer.body;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function environmentOf(api: (method: string, path: string) => Promise<any>, projectId: string, prNumber: number): Promise<any | undefined> {
  const page = await api("GET", `/v1/projects/${projectId}/environments?status=all&limit=100`);
  return (page.data as { pr_number: number; created_at: string }[]).filter((e) => e.pr_number === prNumber).sort((a, b) => b.created_at.localeCompare(a.created_at))[0];
}

/** Prints the environment's run and its build logs until the preview of `headSha` is ready (0) or fails (1). */
async function followPreview(
  api: (method: string, path: string) => Promise<any>,
  state: { api_url: string; preview_domain: string },
  token: string,
  projectId: string,
  previewAccess: string,
  prNumber: number,
  headSha: string,
  timeoutMs: number,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  const seen = new Map<string, string>();
  const cursors = new Map<string, number>();
  const changed = (key: string, value: string) => seen.get(key) !== value && (seen.set(key, value), true);
  while (Date.now() < deadline) {
    const environment = await environmentOf(api, projectId, prNumber);
    if (environment) {
      if (changed("environment", `${environment.status}/${environment.vm_status}`)) say(`environment ${environment.id}: ${environment.status} (VM ${environment.vm_status})`);
      const runs = (await api("GET", `/v1/environments/${environment.id}/runs?limit=10`)).data as { id: string; commit_hash: string }[];
      const current = runs.find((r) => r.commit_hash === headSha);
      if (current) {
        const run = await api("GET", `/v1/runs/${current.id}`);
        if (changed(`run ${run.id}`, run.status)) say(`run ${run.id} (${run.trigger}): ${run.status}`);
        for (const job of run.jobs as { id: string; name: string; status: string; error_message: string | null }[]) {
          if (changed(`job ${job.id}`, job.status)) say(`build ${job.name}: ${job.status}${job.error_message ? ` (${job.error_message})` : ""}`);
          for (;;) {
            const logs = await api("GET", `/v1/jobs/${job.id}/logs?cursor=${cursors.get(job.id) ?? 0}`);
            for (const line of logs.data as { seq: number; line: string }[]) {
              console.log(`  ${job.name} | ${line.line}`);
              cursors.set(job.id, line.seq);
            }
            if (!logs.next_cursor) break;
          }
        }
        if (run.status === "failed" || run.status === "cancelled") {
          say(`the preview failed: ${run.error_message ?? environment.error_message ?? `run ${run.status}`}`);
          return 1;
        }
        if (environment.status === "ready" && environment.commit_hash === headSha && run.status === "completed") {
          const { link, note } = await localPreviewLink(
            { apiUrl: state.api_url, previewDomain: state.preview_domain, devToken: token },
            { environmentId: environment.id, hash: new URL(environment.url).hostname.split(".")[0]!, access: previewAccess, ofDevTeam: true },
          );
          console.log(`preview ready: ${link}${note}`);
          return 0;
        }
      } else if (environment.status === "failed" && environment.commit_hash === headSha) {
        say(`the preview failed: ${environment.error_message ?? "no reason given"}`);
        return 1;
      }
    }
    await sleep(1000);
  }
  say(`no preview within ${timeoutMs / 1000} s: see npm run dev's output, and the environment's runs in the dashboard`);
  return 1;
}

async function followTeardown(api: (method: string, path: string) => Promise<any>, projectId: string, prNumber: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const environment = await environmentOf(api, projectId, prNumber);
    if (!environment || ["terminated", "reaped"].includes(environment.status)) {
      say(environment ? `environment ${environment.id}: ${environment.status}` : "no environment left for it");
      return 0;
    }
    await sleep(1000);
  }
  say(`the environment was not torn down within ${timeoutMs / 1000} s`);
  return 1;
}

try {
  process.exitCode = await main();
} catch (error) {
  if (!(error instanceof DemoFailure)) throw error;
  say(error.message);
  process.exitCode = 1;
}
