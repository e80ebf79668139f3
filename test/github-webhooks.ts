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

// The payload has a module of its own so that tests outside workerd (test/system) can build one too.
export { pullRequestPayload } from "./github-payloads.ts";
