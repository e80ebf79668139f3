import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import "../src/app.ts";
import { atLeast, type Role } from "../src/auth/roles.ts";
import { generateToken } from "../src/auth/tokens.ts";
import { apiTokens, auditLogs, environments, previewShareTokens, projectRegistries, pullRequests, teamInvitations, teamMembers } from "../src/db/schema.ts";
import { newId } from "../src/lib/ids.ts";
import { registeredRoutes, type RouteDefinition } from "../src/lib/route.ts";
import { countRoundTrips, db, waitForQuiet } from "./db.ts";
import { call, seedCloudProvider, seedInstallation, seedPipeline, seedProject, seedSecret, seedTeam, seedUser, seedWorld } from "./harness.ts";

// Every registered route, checked against its declared access: no token → 401, another team → 404, a role below
// the minimum → 403 (and nothing written), the minimum role → success within the round-trip budget. A new route
// is in this matrix the moment it is defined.

const roles: Role[] = ["viewer", "member", "admin", "owner"];

/** Routes allowed more than auth + one query/batch, and why (reported in the closing note too). */
const roundTripExceptions: Record<string, { max: number; why: string }> = {
  "PATCH /v1/secrets/:id": { max: 3, why: "reads the secret's project, key and scope to seal the new value to them" },
  "POST /v1/cloud-providers/:id/validate": { max: 3, why: "reads the stored credentials, calls the cloud, then records the outcome" },
  "GET /v1/jobs/:id/logs": { max: 3, why: "checks the job's team, then reads the page of lines" },
  "GET /v1/jobs/:id/logs/stream": { max: 4, why: "a stream: checks the job's team, reads history, then follows the agent" },
};

/** Routes whose least role may act only on the caller's own `:user`; acting on someone else needs more (their handler checks). */
const ownUserAtMinRole: Record<string, { why: string }> = {
  "DELETE /v1/teams/:team/members/:user": { why: "any member may leave; removing someone else needs admin" },
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
  const invitationId = newId("invitation");
  await db.insert(teamInvitations).values({ id: invitationId, teamId: w.team.id, githubLogin: "matrix-invitee", role: "member", invitedBy: w.owner.id, expiresAt: new Date(Date.now() + 86_400_000) });
  const provider = await seedCloudProvider(w.team.id);
  const project = await seedProject(w.team.id, { cloudProviderId: provider.id });
  // The repository of POST /v1/teams/:team/projects's example, and one more installation to disconnect.
  await seedInstallation(w.team.id, ["acme/web"]);
  const installation = await seedInstallation(w.team.id, [`acme/matrix-${target.id}`]);
  // The pull request of POST /v1/projects/:id/environments's example, as its webhooks recorded it.
  await db.insert(pullRequests).values({
    projectId: project.id,
    prNumber: 42,
    state: "open",
    headSha: "0123456789abcdef0123456789abcdef01234567",
    headRef: "feature/login",
    lastEventAt: new Date(),
  });
  const secretValue = `matrix-secret-${target.id}`;
  const secret = await seedSecret(project.id, "MATRIX_SECRET", secretValue);
  // The project's registry, for GET and DELETE /v1/projects/:id/registry.
  await db.insert(projectRegistries).values({ projectId: project.id, kind: "digitalocean", registryName: "matrix" });
  // In a project of its own, so the project under test has no live preview (which would block deleting it).
  const { environment, run, job } = await seedPipeline((await seedProject(w.team.id)).id);
  const share = await generateToken("share");
  const [shareToken] = await db
    .insert(previewShareTokens)
    .values({ id: newId("shareToken"), environmentId: environment.id, name: "matrix", tokenHash: share.hash, tokenHint: share.hint, expiresAt: new Date(Date.now() + 3_600_000) })
    .returning();
  leaks.push(share.token, w.owner.token, w.admin.token, w.member.token, w.viewer.token, w.outsider.token, target.token, secretValue, "hcloud-seeded-token-0123456789abcdef");
  return { ...w, target, provider, project, secret, environment, run, job, installation, invitationId, shareToken: shareToken! };
}

type World = Awaited<ReturnType<typeof world>>;

function pathFor(route: RouteDefinition, w: World, user: { id: string } = w.target): string {
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
    if (name === "user") return user.id;
    if (name === "installation") return String(w.installation.id);
    if (name === "invitation") return w.invitationId;
    if (name === "id" && idFor) return idFor;
    throw new Error(`the matrix has no fixture for :${name} of ${route.method.toUpperCase()} ${route.path}; add one`);
  });
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
      const body = route.example;
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
      if (ownUserAtMinRole[name]) {
        const onSomeoneElse = await call(route.method, path, { token: w[minRole].token, body });
        expect(onSomeoneElse.status, `${name} as ${minRole} on someone else: ${onSomeoneElse.text}`).toBe(403);
      }
      expect(await auditCount(w.team.id), `${name}: refused calls wrote nothing`).toBe(audits);

      if (name === "DELETE /v1/teams/:team") await db.update(environments).set({ status: "terminated" }).where(eq(environments.id, w.environment.id));
      // Warm the token first: its last_used_at refresh (at most once per 5 minutes, off the request path) is not
      // part of the route's cost.
      await call("GET", "/v1/me", { token: w[minRole].token });
      await waitForQuiet();
      let allowed!: Awaited<ReturnType<typeof call>>;
      const allowedPath = ownUserAtMinRole[name] ? pathFor(route, w, w[minRole]) : path;
      const trips = await countRoundTrips(async () => (allowed = await call(route.method, allowedPath, { token: w[minRole].token, body })));
      expect(allowed.status, `${name} as ${minRole}: ${allowed.text}`).toBeLessThan(300);
      expect(trips, `${name}: database round trips`).toBeLessThanOrEqual(roundTripExceptions[name]?.max ?? 2);
      if (route.method !== "get") expect(await auditCount(w.team.id), `${name} writes an audit row`).toBeGreaterThan(audits);
      seen.push(allowed.text, anonymous.text, outsider.text);
    });
  }
});

/** A signed-in user with something of their own behind every `:id` of the user routes, and a stranger. */
async function userWorld() {
  const [user, stranger] = [await seedUser(), await seedUser()];
  const inviter = await seedUser();
  const team = await seedTeam([{ user: inviter, role: "owner" }]);
  const token = await generateToken("api");
  const tokenId = newId("token");
  const invitationId = newId("invitation");
  await db.batch([
    db.insert(apiTokens).values({ id: tokenId, userId: user.id, kind: "api", name: "second", tokenHash: token.hash, tokenHint: token.hint }),
    db.insert(teamInvitations).values({ id: invitationId, teamId: team.id, githubLogin: user.githubLogin, role: "member", invitedBy: inviter.id, expiresAt: new Date(Date.now() + 86_400_000) }),
  ]);
  leaks.push(user.token, stranger.token, inviter.token, token.token);
  return { user, stranger, tokenId, invitationId };
}

function userPathFor(route: RouteDefinition, w: Awaited<ReturnType<typeof userWorld>>): string {
  return route.path.replace(/:([a-z_]+)/g, (_, name: string) => {
    if (name === "id" && route.path.startsWith("/v1/tokens/")) return w.tokenId;
    if (name === "id" && route.path.startsWith("/v1/invitations/")) return w.invitationId;
    throw new Error(`the matrix has no fixture for :${name} of ${route.method.toUpperCase()} ${route.path}; add one`);
  });
}

const auditCountBy = async (actorId: string) => (await db.select().from(auditLogs).where(eq(auditLogs.actorId, actorId))).length;

describe("every signed-in route: no token → 401, someone else's resource → 404, your own → success", () => {
  it("has routes to check", () => expect(userRoutes.length).toBeGreaterThanOrEqual(9));

  for (const route of userRoutes) {
    const name = `${route.method.toUpperCase()} ${route.path}`;
    it(name, async () => {
      const w = await userWorld();
      const path = userPathFor(route, w);
      const anonymous = await call(route.method, path, { body: route.example });
      expect(anonymous.status, `${name} without a token`).toBe(401);
      expect(anonymous.headers.get("www-authenticate")).toContain("Bearer");

      if (route.params) {
        const audits = await auditCountBy(w.stranger.id);
        const stranger = await call(route.method, path, { token: w.stranger.token, body: route.example });
        expect(stranger.status, `${name} on someone else's: ${stranger.text}`).toBe(404);
        expect(await auditCountBy(w.stranger.id), `${name}: a refused call wrote nothing`).toBe(audits);
        seen.push(stranger.text);
      }

      const audits = await auditCountBy(w.user.id);
      await call("GET", "/v1/me", { token: w.user.token });
      await waitForQuiet();
      let allowed!: Awaited<ReturnType<typeof call>>;
      const trips = await countRoundTrips(async () => (allowed = await call(route.method, path, { token: w.user.token, body: route.example })));
      expect(allowed.status, `${name}: ${allowed.text}`).toBeLessThan(300);
      expect(trips, `${name}: database round trips`).toBeLessThanOrEqual(roundTripExceptions[name]?.max ?? 2);
      if (route.method !== "get") expect(await auditCountBy(w.user.id), `${name} writes an audit row`).toBeGreaterThan(audits);
      seen.push(anonymous.text, allowed.text);
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
