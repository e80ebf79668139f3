import { env } from "cloudflare:workers";
import { hmacSha256Hex } from "../src/lib/crypto.ts";
import { call } from "./harness.ts";

/** Sends a webhook to the real Worker the way GitHub does: JSON body, HMAC-SHA256 signature, event and delivery headers. */
export async function sendWebhook(event: string, payload: unknown, options: { deliveryId?: string; secret?: string } = {}) {
  const body = JSON.stringify(payload);
  const signature = `sha256=${await hmacSha256Hex(options.secret ?? env.GITHUB_WEBHOOK_SECRET!, body)}`;
  return call("POST", "/v1/webhooks/github", {
    body,
    headers: {
      "X-GitHub-Event": event,
      "X-GitHub-Delivery": options.deliveryId ?? crypto.randomUUID(),
      "X-Hub-Signature-256": signature,
      "Content-Type": "application/json",
    },
  });
}

// The pull_request payload has a module of its own so that tests outside workerd (test/system) can build one too.
export { pullRequestPayload } from "./github-payloads.ts";

/** GitHub's installation object as webhooks carry it. */
export function installationJson(input: { id: number; account?: string; suspendedAt?: string | null }) {
  const account = input.account ?? "acme";
  return {
    id: input.id,
    account: { login: account, id: 4242, type: "Organization" },
    repository_selection: "selected",
    access_tokens_url: `https://api.github.com/app/installations/${input.id}/access_tokens`,
    repositories_url: "https://api.github.com/installation/repositories",
    app_id: 424242,
    app_slug: "stagely-test",
    target_id: 4242,
    target_type: "Organization",
    permissions: { contents: "read", metadata: "read", deployments: "write", issues: "write", pull_requests: "write" },
    events: ["pull_request"],
    created_at: "2026-11-20T10:00:00Z",
    updated_at: "2026-11-20T10:00:00Z",
    suspended_at: input.suspendedAt ?? null,
    suspended_by: null,
  };
}

function repositoryJson(repository: { id: number; full_name: string }) {
  return { id: repository.id, node_id: `R_${repository.id}`, name: repository.full_name.split("/")[1], full_name: repository.full_name, private: true };
}

/** An `installation` webhook payload (created, deleted, suspend, unsuspend, new_permissions_accepted). */
export function installationPayload(input: { action: string; id: number; account?: string; repositories?: { id: number; full_name: string }[]; suspendedAt?: string | null }) {
  return {
    action: input.action,
    installation: installationJson(input),
    ...(input.repositories ? { repositories: input.repositories.map(repositoryJson) } : {}),
    sender: { login: "octocat", id: 583231, type: "User" },
  };
}

/** An `installation_repositories` webhook payload (added, removed). */
export function installationRepositoriesPayload(input: {
  action: "added" | "removed";
  id: number;
  account?: string;
  added?: { id: number; full_name: string }[];
  removed?: { id: number; full_name: string }[];
}) {
  return {
    action: input.action,
    installation: installationJson(input),
    repository_selection: "selected",
    repositories_added: (input.added ?? []).map(repositoryJson),
    repositories_removed: (input.removed ?? []).map(repositoryJson),
    requester: null,
    sender: { login: "octocat", id: 583231, type: "User" },
  };
}
