/** A `pull_request` payload with the fields GitHub sends that Stagely reads. */
export function pullRequestPayload(input: {
  action: string;
  repo: string;
  number: number;
  sha: string;
  ref?: string;
  updatedAt?: string;
  /** The head repository (a fork's), or null when the fork was deleted; default: the base repository. */
  headRepo?: string | null;
  installationId?: number;
  title?: string;
}) {
  return {
    action: input.action,
    number: input.number,
    pull_request: {
      number: input.number,
      title: input.title ?? `Change ${input.number}`,
      state: input.action === "closed" ? "closed" : "open",
      updated_at: input.updatedAt ?? new Date().toISOString(),
      head: { sha: input.sha, ref: input.ref ?? "feature", repo: input.headRepo === null ? null : { full_name: input.headRepo ?? input.repo } },
      base: { ref: "main", repo: { full_name: input.repo } },
    },
    repository: { full_name: input.repo },
    installation: input.installationId === undefined ? undefined : { id: input.installationId },
    sender: { login: "octocat" },
  };
}
