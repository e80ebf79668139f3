import { mkdir } from "node:fs/promises";
import { JobFailure } from "./job-context.ts";
import { runProcess, type RunOptions } from "./run-process.ts";

export interface CheckoutRequest {
  /** https://host/owner/repo(.git) */
  repoUrl: string;
  /** The commit to check out (full SHA, or a prefix Core was given). */
  commit: string;
  /** Fetched instead when the server refuses a commit by id (old servers without protocol v2). */
  branch: string;
  /** An installation token (GitHub) or null for a public repository. */
  token: string | null | undefined;
  dir: string;
}

const cloneFailed = (message: string) => new JobFailure("CLONE_FAILED", message);

/**
 * How git gets the token: an `Authorization: Basic x-access-token:<token>` header for the repository's origin only,
 * passed as configuration through the environment (GIT_CONFIG_COUNT, git 2.31+). So it is not in the remote URL,
 * not in .git/config, not in an argument (the process list), and git never prints it.
 */
export function gitAuthEnv(repoUrl: string, token: string | null | undefined): Record<string, string> {
  const env: Record<string, string> = { GIT_TERMINAL_PROMPT: "0", GIT_CONFIG_COUNT: "0" };
  if (!token) return env;
  const credentials = Buffer.from(`x-access-token:${token}`).toString("base64");
  return {
    ...env,
    GIT_CONFIG_COUNT: "1",
    GIT_CONFIG_KEY_0: `http.${new URL(repoUrl).origin}/.extraHeader`,
    GIT_CONFIG_VALUE_0: `Authorization: Basic ${credentials}`,
  };
}

/**
 * A checkout of exactly `commit` in `dir`: a shallow fetch of that commit alone (protocol v2 serves any reachable
 * commit), or of the branch when the server refuses. Throws a JobFailure (CLONE_FAILED) that says what failed.
 */
export async function checkoutCommit(request: CheckoutRequest, options: Pick<RunOptions, "onLine" | "signal"> = {}): Promise<string> {
  let url: URL;
  try {
    url = new URL(request.repoUrl);
  } catch {
    throw cloneFailed("repo_url is not a URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw cloneFailed(`repo_url must be http(s), not ${url.protocol}`);
  if (url.username || url.password) throw cloneFailed("repo_url must not carry credentials");
  if (!/^[0-9a-f]{4,64}$/i.test(request.commit)) throw cloneFailed("commit_hash must be a hexadecimal commit id");

  await mkdir(request.dir, { recursive: true });
  const env = gitAuthEnv(request.repoUrl, request.token);
  const git = async (args: string[], what: string) => {
    const result = await runProcess("git", ["-C", request.dir, ...args], { ...options, env });
    if (result.aborted) throw cloneFailed(`${what} was stopped`);
    if (result.code !== 0) throw cloneFailed(`${what} failed: ${result.stderrTail.filter(Boolean).at(-1) ?? `exit code ${result.code}`}`);
  };
  await git(["init", "--quiet"], "git init");
  await git(["remote", "add", "origin", request.repoUrl], "git remote add");
  try {
    await git(["fetch", "--quiet", "--no-tags", "--depth", "1", "origin", request.commit], `fetching commit ${request.commit.slice(0, 12)}`);
  } catch (error) {
    if (!/^[\w./-]+$/.test(request.branch) || (error as Error).message.endsWith("was stopped")) throw error;
    options.onLine?.("stderr", `[stagely] the server did not serve the commit by id; fetching branch ${request.branch}`);
    await git(["fetch", "--quiet", "--no-tags", "origin", `+refs/heads/${request.branch}:refs/remotes/origin/${request.branch}`], `fetching branch ${request.branch}`);
  }
  await git(["-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", request.commit], `checking out ${request.commit.slice(0, 12)}`);
  const head = await runProcess("git", ["-C", request.dir, "rev-parse", "HEAD"], { captureStdout: true });
  const sha = head.stdout.trim();
  if (!sha.startsWith(request.commit.toLowerCase())) throw cloneFailed(`checked out ${sha.slice(0, 12)} instead of ${request.commit.slice(0, 12)}`);
  return sha;
}
