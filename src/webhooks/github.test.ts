import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { countRoundTrips, db } from "../../test/db.ts";
import { pullRequestPayload, sendWebhook } from "../../test/github-webhooks.ts";
import { call } from "../../test/harness.ts";
import { webhookDeliveries } from "../db/schema.ts";

const sha = "b".repeat(40);

describe("POST /v1/webhooks/github", () => {
  it("refuses a bad signature with 401 and records nothing", async () => {
    const deliveryId = crypto.randomUUID();
    const forged = await sendWebhook("pull_request", pullRequestPayload({ action: "opened", repo: "acme/web", number: 1, sha }), { deliveryId, secret: "not-the-secret" });
    expect(forged.status).toBe(401);
    const unsigned = await call("POST", "/v1/webhooks/github", { body: "{}", headers: { "X-GitHub-Event": "ping", "X-GitHub-Delivery": deliveryId } });
    expect(unsigned.status).toBe(401);
    expect(await db.select().from(webhookDeliveries).where(eq(webhookDeliveries.deliveryId, deliveryId))).toEqual([]);
  });

  it("answers ping, and acknowledges events and actions it does not use without storing them", async () => {
    expect((await sendWebhook("ping", { zen: "Keep it logically awesome." })).body).toEqual({ status: "pong" });
    const push = await sendWebhook("push", { ref: "refs/heads/main" });
    expect(push.status).toBe(202);
    expect(push.body.status).toBe("ignored");
    const labeled = await sendWebhook("pull_request", pullRequestPayload({ action: "labeled", repo: "acme/web", number: 1, sha }));
    expect(labeled.body).toEqual({ status: "ignored", reason: "action labeled is not used" });
  });

  it("queues a pull_request event once per delivery, in one database round trip", async () => {
    const deliveryId = crypto.randomUUID();
    const payload = pullRequestPayload({ action: "opened", repo: "acme/nothing-here", number: 3, sha, installationId: 12345 });
    let first!: Awaited<ReturnType<typeof sendWebhook>>;
    expect(await countRoundTrips(async () => (first = await sendWebhook("pull_request", payload, { deliveryId })))).toBe(1);
    expect(first.status).toBe(202);
    expect(first.body).toEqual({ status: "queued" });
    const again = await sendWebhook("pull_request", payload, { deliveryId });
    expect(again.body).toEqual({ status: "duplicate" });
    expect(await db.select().from(webhookDeliveries).where(eq(webhookDeliveries.deliveryId, deliveryId))).toHaveLength(1);
  });

  it("ignores a pull_request that names no App installation: no team's project may act on it", async () => {
    const deliveryId = crypto.randomUUID();
    const ignored = await sendWebhook("pull_request", pullRequestPayload({ action: "opened", repo: "acme/web", number: 4, sha }), { deliveryId });
    expect(ignored.status).toBe(202);
    expect(ignored.body).toEqual({ status: "ignored", reason: "the payload names no GitHub App installation" });
    expect(await db.select().from(webhookDeliveries).where(eq(webhookDeliveries.deliveryId, deliveryId))).toEqual([]);
  });

  it("rejects a signed body that is not a pull_request payload with 4xx, not 500", async () => {
    const bad = await sendWebhook("pull_request", { action: "opened", number: "x" });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("VALIDATION_FAILED");
    const noDelivery = await call("POST", "/v1/webhooks/github", {
      body: "{}",
      headers: { "X-GitHub-Event": "ping", "X-Hub-Signature-256": "sha256=" + "0".repeat(64) },
    });
    expect(noDelivery.status).toBe(401);
  });
});
