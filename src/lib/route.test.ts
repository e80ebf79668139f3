import { env } from "cloudflare:workers";
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { Hono } from "hono/tiny";
import { beforeEach, describe, expect, it } from "vitest";
import * as z from "zod";
import type { AppEnv } from "../app-env.ts";
import type { Membership } from "../auth/middleware.ts";
import { seedWorld } from "../../test/harness.ts";
import { handleError, handleNotFound } from "./errors.ts";
import { requestContext } from "./request-context.ts";
import { defineRoute, mountRoutes } from "./route.ts";
import { teamParams } from "./schemas.ts";

// Routes of this test's own, mounted the way app.ts mounts every route; their handlers record each time they run.
const handedToAdminRoute: Membership[] = [];
const adminRoute = defineRoute({
  method: "post",
  path: "/v1/teams/:team/route-test",
  summary: "Records the membership it is handed",
  tag: "test",
  access: { kind: "team", minRole: "admin", resource: "team" },
  params: teamParams,
  async handler(c, { team }) {
    handedToAdminRoute.push(team);
    return c.json({ role: team.role });
  },
});
const userRoute = defineRoute({
  method: "get",
  path: "/v1/route-test",
  summary: "Says whether it was handed a team",
  tag: "test",
  access: { kind: "user" },
  async handler(c, input) {
    return c.json({ handed_a_team: "team" in input });
  },
});

const app = new Hono<AppEnv>().use(requestContext).notFound(handleNotFound).onError(handleError);
mountRoutes(app, [adminRoute, userRoute]);

async function call(method: string, path: string, token: string) {
  const ctx = createExecutionContext();
  const response = await app.fetch(new Request(`https://stagely.test${path}`, { method, headers: { Authorization: `Bearer ${token}` } }), env, ctx);
  await waitOnExecutionContext(ctx);
  return { status: response.status, body: (await response.json()) as { error?: { code: string; message: string }; role?: string; handed_a_team?: boolean } };
}

describe("a team route found by :team enforces its declared role before its handler runs", () => {
  beforeEach(() => void handedToAdminRoute.splice(0));

  it("refuses a role below the declared one with 403, and the handler never runs", async () => {
    const w = await seedWorld();
    for (const role of ["member", "viewer"] as const) {
      const denied = await call("POST", `/v1/teams/${w.team.slug}/route-test`, w[role].token);
      expect(denied.status).toBe(403);
      expect(denied.body.error).toMatchObject({ code: "FORBIDDEN", message: `this needs the admin role or higher in team ${w.team.slug}; you are ${role}` });
    }
    expect(handedToAdminRoute).toEqual([]);
  });

  it("answers 404 for a team the caller is not in, and 400 for a malformed team before looking", async () => {
    const w = await seedWorld();
    const outsider = await call("POST", `/v1/teams/${w.team.slug}/route-test`, w.outsider.token);
    expect(outsider.status).toBe(404);
    expect(outsider.body.error).toMatchObject({ code: "NOT_FOUND", message: `team ${w.team.slug} not found` });
    const malformed = await call("POST", "/v1/teams/NOT%20A%20TEAM/route-test", w.outsider.token);
    expect(malformed.status).toBe(400);
    expect(handedToAdminRoute).toEqual([]);
  });

  it("hands the handler the caller's membership, whether the team is named by slug or id", async () => {
    const w = await seedWorld();
    expect(await call("POST", `/v1/teams/${w.team.slug}/route-test`, w.admin.token)).toEqual({ status: 200, body: { role: "admin" } });
    expect(await call("POST", `/v1/teams/${w.team.id}/route-test`, w.owner.token)).toEqual({ status: 200, body: { role: "owner" } });
    expect(handedToAdminRoute).toEqual([
      { teamId: w.team.id, slug: w.team.slug, role: "admin" },
      { teamId: w.team.id, slug: w.team.slug, role: "owner" },
    ]);
  });

  it("hands no team to a route that is not found by :team", async () => {
    const w = await seedWorld();
    expect(await call("GET", "/v1/route-test", w.viewer.token)).toEqual({ status: 200, body: { handed_a_team: false } });
  });

  it("refuses to mount a route declared by :team without a :team parameter", () => {
    const noTeamParameter = { ...adminRoute, path: "/v1/route-test/:id", params: z.object({ id: z.string() }) };
    expect(() => mountRoutes(new Hono<AppEnv>(), [noTeamParameter] as never)).toThrow(/declares resource "team" but has no :team parameter/);
  });
});
