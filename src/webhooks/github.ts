import { eq } from "drizzle-orm";
import * as z from "zod";
import { configOf, dbOf } from "../app-env.ts";
import { webhookDeliveries } from "../db/schema.ts";
import { installationEvents, parseInstallationEvent, type InstallationEvent } from "../installations/webhooks.ts";
import type { Db } from "../db/client.ts";
import { ApiError } from "../lib/errors.ts";
import { defineRoute } from "../lib/route.ts";
import { verifyWebhookSignature } from "../pipeline/github-app.ts";
import type { PullRequestMessage } from "../pipeline/messages.ts";

/** `edited` only updates the title the dashboard shows. */
const handledActions = new Set(["opened", "reopened", "synchronize", "closed", "edited"]);

const pullRequestPayload = z.object({
  action: z.string(),
  number: z.number().int().positive(),
  pull_request: z.object({
    updated_at: z.string(),
    // GitHub caps titles at 256 characters; anything longer is cut rather than refused, like a missing one.
    title: z.string().optional().transform((t) => t?.slice(0, 256) ?? null),
    head: z.object({
      sha: z.string().regex(/^[0-9a-f]{40}$/),
      ref: z.string().min(1).max(255),
      /** Null when the head repository (a fork) was deleted. */
      repo: z.object({ full_name: z.string() }).nullable(),
    }),
  }),
  repository: z.object({ full_name: z.string().regex(/^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+$/) }),
  installation: z.object({ id: z.number().int().positive() }).optional(),
  sender: z.object({ login: z.string() }).optional(),
});

const answer = z.object({ status: z.enum(["queued", "applied", "ignored", "duplicate", "pong"]), reason: z.string().optional() });

function parseBody(raw: ArrayBuffer): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(raw));
  } catch {
    throw new ApiError("BAD_REQUEST", "the webhook body is not JSON");
  }
}

/** Records the delivery id; false when it was recorded before (a redelivery). */
async function firstDelivery(db: Db, deliveryId: string, event: string): Promise<boolean> {
  const [fresh] = await db.insert(webhookDeliveries).values({ deliveryId, event }).onConflictDoNothing().returning({ id: webhookDeliveries.deliveryId });
  return Boolean(fresh);
}

/** Forgets a delivery whose work failed, so GitHub's redelivery is processed. */
async function forgetDelivery(db: Db, deliveryId: string): Promise<void> {
  await db.delete(webhookDeliveries).where(eq(webhookDeliveries.deliveryId, deliveryId));
}

/**
 * GitHub's webhooks. Verified against GITHUB_WEBHOOK_SECRET before anything else and recorded by delivery id so a
 * redelivery is processed once. A pull_request is handed to the queue (one round trip); an installation change is
 * applied at once (two: the delivery, then one batch). Both are well within GitHub's 10 s.
 */
export const githubWebhook = defineRoute({
  method: "post",
  path: "/v1/webhooks/github",
  summary: "GitHub App webhooks (pull_request events start, update and remove previews; installation events keep installations current)",
  tag: "webhooks",
  // GitHub delivers from a few shared addresses: a per-IP limit would drop other customers' webhooks. The signature
  // is checked before any work.
  access: { kind: "public", perIpLimit: null },
  response: answer,
  status: 202,
  async handler(c) {
    const secret = configOf(c).GITHUB_WEBHOOK_SECRET;
    if (!secret) throw new ApiError("SERVICE_UNAVAILABLE", "webhooks are not configured on this server (GITHUB_WEBHOOK_SECRET)");
    const raw = await c.req.arrayBuffer();
    if (!(await verifyWebhookSignature(secret, raw, c.req.header("X-Hub-Signature-256")))) {
      throw new ApiError("UNAUTHORIZED", "the X-Hub-Signature-256 signature does not match this body");
    }
    const event = c.req.header("X-GitHub-Event") ?? "";
    const deliveryId = c.req.header("X-GitHub-Delivery") ?? "";
    if (!/^[0-9a-fA-F-]{8,64}$/.test(deliveryId)) throw new ApiError("BAD_REQUEST", "missing or malformed X-GitHub-Delivery header");
    if (event === "ping") return c.json({ status: "pong" as const }, 200);
    const db = dbOf(c);

    if ((installationEvents as readonly string[]).includes(event)) {
      const parsed = parseInstallationEvent(event as InstallationEvent, parseBody(raw));
      if (!parsed.ok && parsed.unused) return c.json({ status: "ignored" as const, reason: `action ${parsed.action} is not used` }, 202);
      if (!parsed.ok) throw new ApiError("VALIDATION_FAILED", `not an ${event} payload: ${parsed.problems}`);
      if (!(await firstDelivery(db, deliveryId, event))) return c.json({ status: "duplicate" as const }, 200);
      try {
        await db.batch(parsed.apply(db));
      } catch (error) {
        await forgetDelivery(db, deliveryId);
        throw error;
      }
      return c.json({ status: "applied" as const }, 200);
    }
    if (event !== "pull_request") return c.json({ status: "ignored" as const, reason: `event ${event || "(none)"} is not used` }, 202);

    const parsed = pullRequestPayload.safeParse(parseBody(raw));
    if (!parsed.success) {
      throw new ApiError("VALIDATION_FAILED", `not a pull_request payload: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    }
    const payload = parsed.data;
    if (!handledActions.has(payload.action)) return c.json({ status: "ignored" as const, reason: `action ${payload.action} is not used` }, 202);
    // Only an installation's team may act on its repositories: without one, nobody's project is reached.
    if (!payload.installation) return c.json({ status: "ignored" as const, reason: "the payload names no GitHub App installation" }, 202);

    if (!(await firstDelivery(db, deliveryId, event))) return c.json({ status: "duplicate" as const }, 200);
    const headRepository = payload.pull_request.head.repo?.full_name.toLowerCase();
    const message: PullRequestMessage = {
      type: "github.pull_request",
      delivery_id: deliveryId,
      installation_id: payload.installation.id,
      repository: payload.repository.full_name,
      action: payload.action as PullRequestMessage["action"],
      pr_number: payload.number,
      head_sha: payload.pull_request.head.sha,
      head_ref: payload.pull_request.head.ref,
      title: payload.pull_request.title,
      // Decided here, from GitHub's data only: the head lives in another repository (or one since deleted).
      is_fork: headRepository !== payload.repository.full_name.toLowerCase(),
      updated_at: payload.pull_request.updated_at,
      sender: payload.sender?.login ?? null,
    };
    try {
      await c.env.JOBS.send(message);
    } catch (error) {
      await forgetDelivery(db, deliveryId);
      throw error;
    }
    return c.json({ status: "queued" as const }, 202);
  },
});
