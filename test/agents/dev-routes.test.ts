import { env } from "cloudflare:workers";
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/index.ts";
import { BASE, buildCommand, createAgent, devUser } from "./helpers.ts";

/** Calls the Worker as a signed-in developer (`token` null: no Authorization header). */
async function call(path: string, init: RequestInit, overrides: Partial<Env> = {}, token: string | null | undefined = undefined) {
  const ctx = createExecutionContext();
  const bearer = token === undefined ? (await devUser()).token : token;
  const headers = { ...(init.headers as Record<string, string>), ...(bearer === null ? {} : { authorization: `Bearer ${bearer}` }) };
  const response = await worker.fetch(new Request(`${BASE}${path}`, { ...init, headers }), { ...env, ...overrides } as Env, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

const json = (body: unknown): RequestInit => ({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
const devRequests = [
  ["/v1/dev/agents", json({ role: "builder" })],
  ["/v1/dev/agents/agt_0000000000000000", { method: "GET" }],
  ["/v1/dev/agents/agt_0000000000000000/commands", json(buildCommand("job_x"))],
] as const;

describe("development routes", () => {
  it("do not exist in production, even for a signed-in user", async () => {
    for (const [path, init] of devRequests) {
      const response = await call(path, init, { STAGELY_ENV: "production" });
      expect(response.status, path).toBe(404);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("NOT_FOUND");
    }
  });

  it("need the API token of a signed-in user", async () => {
    for (const [path, init] of devRequests) {
      for (const token of [null, "stg_pat_" + "x".repeat(32), "not-a-token"]) {
        const response = await call(path, init, {}, token);
        expect(response.status, `${path} with ${token}`).toBe(401);
        expect(response.headers.get("www-authenticate")).toContain("Bearer");
      }
    }
  });

  it("create an agent with its rows, show its state, and take commands (validated)", async () => {
    const agent = await createAgent("builder", { API_KEY: "sk-test-123456" });
    expect(agent).toMatchObject({ role: "builder", agent_id: expect.stringMatching(/^agt_/), build_job_id: expect.stringMatching(/^job_/) });
    const state = await call(`/v1/dev/agents/${agent.agent_id}`, { method: "GET" });
    expect(await state.json()).toMatchObject({ agent_id: agent.agent_id, connected: false, pending_commands: 0 });
    const bad = await call(`/v1/dev/agents/${agent.agent_id}/commands`, json({ type: "BUILD", job_id: "x" }));
    expect(bad.status).toBe(400);
    const queued = await call(`/v1/dev/agents/${agent.agent_id}/commands`, json(buildCommand(agent.build_job_id!)));
    expect(queued.status).toBe(202);
    expect(await queued.json()).toEqual({ id: 1, delivered: false });
    expect((await call("/v1/dev/agents/agt_0000000000000000", { method: "GET" })).status).toBe(404);
    expect((await call("/v1/dev/agents", json({ role: "admin" }))).status).toBe(400);
  });
});
