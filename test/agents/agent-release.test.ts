import { env, exports } from "cloudflare:workers";
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { AGENT_VERSION } from "../../agent/src/version.ts";
import { agentRelease } from "../../src/agents/agent-release.ts";
import worker from "../../src/index.ts";
import { BASE } from "./helpers.ts";

// The agent bundle VMs download: served by the Worker from its static assets, with the SHA-256 cloud-init checks.

const hex = async (bytes: ArrayBuffer) => [...new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");

describe("the agent download", () => {
  it("serves the bundle built from agent/ with its version, and the SHA-256 the Worker puts into cloud-init", async () => {
    const response = await exports.default.fetch(`${BASE}/v1/agent/stagely-agent.mjs`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    const body = await response.arrayBuffer();
    expect(new TextDecoder().decode(body.slice(0, 200))).toContain(`// Stagely agent ${AGENT_VERSION}`);
    const release = await agentRelease(env);
    expect(release).toMatchObject({ version: AGENT_VERSION, bytes: body.byteLength });
    expect(await hex(body)).toBe(release.sha256);
    expect(response.headers.get("x-stagely-agent-sha256")).toBe(release.sha256);
    expect(response.headers.get("x-stagely-agent-version")).toBe(AGENT_VERSION);

    const described = await exports.default.fetch(`${BASE}/v1/agent/release`);
    expect(await described.json()).toEqual({ ...release, url: "https://stagely.test/v1/agent/stagely-agent.mjs" });
  });

  it("answers 503, saying what is missing, when a deployment lacks the bundle", async () => {
    const noAssets = { ...env, ASSETS: { fetch: async () => new Response("not found", { status: 404 }) } } as unknown as Env;
    for (const path of ["/v1/agent/stagely-agent.mjs", "/v1/agent/release"]) {
      const ctx = createExecutionContext();
      const response = await worker.fetch(new Request(`${BASE}${path}`), noAssets, ctx);
      await waitOnExecutionContext(ctx);
      expect(response.status).toBe(503);
      expect(((await response.json()) as { error: { message: string } }).error.message).toContain("agent bundle is missing");
    }
  });
});
