import { GitHubError } from "./errors.ts";

/** A repository, and the App installation that covers it when already known (a webhook's `installation.id`). */
export interface RepoRef {
  owner: string;
  name: string;
  installationId?: number;
}

/** "owner/name", a GitHub URL ("https://github.com/owner/name(.git)"), or a RepoRef. */
export type RepoInput = string | RepoRef;

const ownerPattern = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;
const namePattern = /^[A-Za-z0-9._-]{1,100}$/;

function invalidRepo(): GitHubError {
  return new GitHubError("invalid", "a repository must be given as owner/name or a GitHub URL");
}

/** Checks and normalizes a repository reference; anything else is an `invalid` GitHubError. */
export function toRepoRef(input: RepoInput): RepoRef {
  let owner: string | undefined;
  let name: string | undefined;
  let installationId: number | undefined;
  if (typeof input === "string") {
    const text = input.trim();
    const match = /^https?:\/\/[^/\s]+\/([^/\s]+)\/([^/\s]+?)(?:\.git)?\/?$/.exec(text) ?? /^([^/\s]+)\/([^/\s]+)$/.exec(text);
    owner = match?.[1];
    name = match?.[2];
  } else if (typeof input === "object" && input !== null) {
    owner = input.owner;
    name = input.name;
    installationId = input.installationId;
  }
  if (typeof owner !== "string" || typeof name !== "string" || !ownerPattern.test(owner) || !namePattern.test(name) || name === "." || name === "..") {
    throw invalidRepo();
  }
  if (installationId !== undefined && (!Number.isSafeInteger(installationId) || installationId <= 0)) {
    throw new GitHubError("invalid", "an installation id must be a positive integer");
  }
  return installationId === undefined ? { owner, name } : { owner, name, installationId };
}

export function repoPath(repo: RepoRef): string {
  return `${encodeURIComponent(repo.owner)}/${encodeURIComponent(repo.name)}`;
}

export function fullName(repo: RepoRef): string {
  return `${repo.owner}/${repo.name}`;
}

/** The `rel="next"` URL of a Link header (RFC 8288), if any. */
export function nextLink(header: string | null): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(",")) {
    const match = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    const rel = match ? /\brel\s*=\s*(?:"([^"]*)"|([^\s;]+))/.exec(match[2]!) : null;
    if (rel && (rel[1] ?? rel[2] ?? "").split(/\s+/).includes("next")) return match![1];
  }
  return undefined;
}
