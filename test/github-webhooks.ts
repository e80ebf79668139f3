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

/** A `pull_request` payload with the fields GitHub sends that Stagely reads. */
export function pullRequestPayload(input: {
  action: string;
  repo: string;
  number: number;
  sha: string;
  ref?: string;
  updatedAt?: string;
  headRepo?: string;
  installationId?: number;
}) {
  return {
    action: input.action,
    number: input.number,
    pull_request: {
      number: input.number,
      state: input.action === "closed" ? "closed" : "open",
      updated_at: input.updatedAt ?? new Date().toISOString(),
      head: { sha: input.sha, ref: input.ref ?? "feature", repo: { full_name: input.headRepo ?? input.repo } },
      base: { ref: "main", repo: { full_name: input.repo } },
    },
    repository: { full_name: input.repo },
    installation: input.installationId === undefined ? undefined : { id: input.installationId },
    sender: { login: "octocat" },
  };
}
