import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

/** A commit to add to a repository: `files` is its whole tree (path → content). */
export interface CommitSpec {
  branch: string;
  files: Record<string, string>;
  message: string;
}

const author = {
  GIT_AUTHOR_NAME: "Stagely Test",
  GIT_AUTHOR_EMAIL: "test@stagely.local",
  GIT_COMMITTER_NAME: "Stagely Test",
  GIT_COMMITTER_EMAIL: "test@stagely.local",
};

/** The bare repository `<root>/<owner>/<name>.git` (created when missing) that the git server serves. */
export function bareRepository(root: string, repo: string): string {
  const dir = join(root, `${repo}.git`);
  if (!existsSync(dir)) {
    mkdirSync(dirname(dir), { recursive: true });
    execFileSync("git", ["init", "--quiet", "--bare", dir]);
  }
  return dir;
}

/** Adds a commit on `branch` (on top of its current head) whose tree is exactly `files`; returns its id. */
export function commitFiles(root: string, repo: string, commit: CommitSpec): string {
  const gitDir = bareRepository(root, repo);
  const work = mkdtempSync(join(tmpdir(), "stagely-commit-"));
  try {
    for (const [path, content] of Object.entries(commit.files)) {
      mkdirSync(dirname(join(work, path)), { recursive: true });
      writeFileSync(join(work, path), content);
    }
    const env = { ...process.env, ...author, GIT_DIR: gitDir, GIT_WORK_TREE: work, GIT_INDEX_FILE: join(work, ".git-index") };
    const git = (...args: string[]) => execFileSync("git", args, { env, encoding: "utf8" }).trim();
    git("add", "--all", "--", ".", ":!.git-index");
    const tree = git("write-tree");
    let parent: string | null = null;
    try {
      parent = git("rev-parse", "--verify", "--quiet", `refs/heads/${commit.branch}`);
    } catch {
      // the branch's first commit
    }
    const id = git("commit-tree", tree, ...(parent ? ["-p", parent] : []), "-m", commit.message);
    git("update-ref", `refs/heads/${commit.branch}`, id);
    return id;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
