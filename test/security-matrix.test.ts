import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import "../src/app.ts";
import { atLeast, type Role } from "../src/auth/roles.ts";
import { generateToken } from "../src/auth/tokens.ts";
import { auditLogs, environments, previewShareTokens, teamMembers } from "../src/db/schema.ts";
import { newId } from "../src/lib/ids.ts";
import { registeredRoutes, type RouteDefinition } from "../src/lib/route.ts";
import { countRoundTrips, db, waitForQuiet } from "./db.ts";
import { call, seedCloudProvider, seedPipeline, seedProject, seedSecret, seedUser, seedWorld } from "./harness.ts";

// Every registered route, checked against its declared access: no token → 401, another team → 404, a role below
// the minimum → 403 (and nothing written), the minimum role → success within the round-trip budget. A new route
// is in this matrix the moment it is defined.

const roles: Role[] = ["viewer", "member", "admin", "owner"];

/** Routes allowed more than auth + one query/batch, and why (reported in the closing note too). */
const roundTripExceptions: Record<string, { max: number; why: string }> = {
  "POST /v1/teams/:team/members": { max: 3, why: "looks the user up by email or GitHub login before inserting" },
  "PATCH /v1/secrets/:id": { max: 3, why: "reads the secret's project, key and scope to seal the new value to them" },
  "POST /v1/cloud-providers/:id/validate": { max: 3, why: "reads the stored credentials, calls the cloud, then records the outcome" },
  "GET /v1/jobs/:id/logs": { max: 3, why: "checks the job's team, then reads the page of lines" },
  "GET /v1/jobs/:id/logs/stream": { max: 4, why: "a stream: checks the job's team, reads history, then follows the agent" },
};

const leaks: string[] = [];
const seen: string[] = [];
const logSpies: ReturnType<typeof vi.spyOn>[] = [];

beforeAll(() => {
  for (const method of ["log", "warn", "error"] as const) {
    logSpies.push(vi.spyOn(console, method).mockImplementation((...args: unknown[]) => void seen.push(args.map(String).join(" "))));
  }
});
afterAll(() => {
  for (const spy of logSpies) spy.mockRestore();
});

async function world() {
  const w = await seedWorld();
  const target = await seedUser();
  await db.insert(teamMembers).values({ teamId: w.team.id, userId: target.id, role: "member" });
  await seedUser({ email: `invitee-${target.id}@example.test` });
  const provider = await seedCloudProvider(w.team.id);
  const project = await seedProject(w.team.id, { cloudProviderId: provider.id });
  const secretValue = `matrix-secret-${target.id}`;
  const secret = await seedSecret(project.id, "MATRIX_SECRET", secretValue);
  // In a project of its own, so the project under test has no live preview (which would block deleting it).
  const { environment, run, job } = await seedPipeline((await seedProject(w.team.id)).id);
  const share = await generateToken("share");
  const [shareToken] = await db
    .insert(previewShareTokens)
    .values({ id: newId("shareToken"), environmentId: environment.id, name: "matrix", tokenHash: share.hash, tokenHint: share.hint, expiresAt: new Date(Date.now() + 3_600_000) })
    .returning();
  leaks.push(share.token, w.owner.token, w.admin.token, w.member.token, w.viewer.token, w.outsider.token, target.token, secretValue, "hcloud-seeded-token-0123456789abcdef");
  return { ...w, target, provider, project, secret, environment, run, job, shareToken: shareToken! };
}

type World = Awaited<ReturnType<typeof world>>;

function pathFor(route: RouteDefinition, w: World): string {
  if (route.access.kind !== "team") throw new Error("only team routes have resources");
  const idFor = {
    project: w.project.id,
    cloud_provider: w.provider.id,
    secret: w.secret.id,
    environment: w.environment.id,
    run: w.run.id,
    job: w.job.id,
    share_token: w.shareToken.id,
    team: undefined,
  }[route.access.resource];
  return route.path.replace(/:([a-z_]+)/g, (_, name: string) => {
    if (name === "team") return w.team.slug;
    if (name === "user") return w.target.id;
    if (name === "id" && idFor) return idFor;
    throw new Error(`the matrix has no fixture for :${name} of ${route.method.toUpperCase()} ${route.path}; add one`);
  });
}

function bodyFor(route: RouteDefinition, w: World): unknown {
  if (route.path === "/v1/teams/:team/members" && route.method === "post") return { email: `invitee-${w.target.id}@example.test`, role: "member" };
  return route.example;
}

const auditCount = async (teamId: string) => (await db.select().from(auditLogs).where(eq(auditLogs.teamId, teamId))).length;

const teamRoutes = registeredRoutes().filter((r) => r.access.kind === "team");
const userRoutes = registeredRoutes().filter((r) => r.access.kind === "user");

describe("every team route enforces its declared access", () => {
  it("has routes to check", () => expect(teamRoutes.length).toBeGreaterThan(20));

  for (const route of teamRoutes) {
    const name = `${route.method.toUpperCase()} ${route.path}`;
    const minRole = (route.access as { minRole: Role }).minRole;
    it(name, async () => {
      const w = await world();
      const path = pathFor(route, w);
      const body = bodyFor(route, w);
      const audits = await auditCount(w.team.id);

      const anonymous = await call(route.method, path, { body });
      expect(anonymous.status, `${name} without a token`).toBe(401);

      const outsider = await call(route.method, path, { token: w.outsider.token, body });
      expect(outsider.status, `${name} from another team: ${outsider.text}`).toBe(404);

      for (const role of roles.filter((r) => !atLeast(r, minRole))) {
        const denied = await call(route.method, path, { token: w[role].token, body });
        expect(denied.status, `${name} as ${role}: ${denied.text}`).toBe(403);
        expect((denied.body as { error: { code: string } }).error.code).toBe("FORBIDDEN");
      }
      expect(await auditCount(w.team.id), `${name}: refused calls wrote nothing`).toBe(audits);

      if (name === "DELETE /v1/teams/:team") await db.update(environments).set({ status: "terminated" }).where(eq(environments.id, w.environment.id));
      // Warm the token first: its last_used_at refresh (at most once per 5 minutes, off the request path) is not
      // part of the route's cost.
      await call("GET", "/v1/me", { token: w[minRole].token });
      await waitForQuiet();
      let allowed!: Awaited<ReturnType<typeof call>>;
      const trips = await countRoundTrips(async () => (allowed = await call(route.method, path, { token: w[minRole].token, body })));
      expect(allowed.status, `${name} as ${minRole}: ${allowed.text}`).toBeLessThan(300);
      expect(trips, `${name}: database round trips`).toBeLessThanOrEqual(roundTripExceptions[name]?.max ?? 2);
      if (route.method !== "get") expect(await auditCount(w.team.id), `${name} writes an audit row`).toBeGreaterThan(audits);
      seen.push(allowed.text, anonymous.text, outsider.text);
    });
  }
});

describe("every signed-in route refuses anonymous callers", () => {
  for (const route of userRoutes) {
    it(`${route.method.toUpperCase()} ${route.path}`, async () => {
      const response = await call(route.method, route.path.replace(":id", "tok_0123456789abcdef"), { body: route.example });
      expect(response.status).toBe(401);
      expect(response.headers.get("www-authenticate")).toContain("Bearer");
    });
  }
});

describe("secrets and tokens never leak", () => {
  it("appear in no response body and no log line of the whole matrix", () => {
    expect(leaks.length).toBeGreaterThan(0);
    const everything = seen.join("\n");
    for (const value of leaks) expect(everything.includes(value), `leaked: ${value.slice(0, 12)}…`).toBe(false);
    for (const value of ["correct-horse-battery-staple", "hcloud-example-token-0123456789abcdef"]) expect(everything).not.toContain(value);
  });
});
