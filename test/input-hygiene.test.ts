import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import "../src/app.ts";
import { auditLogs, buildJobs } from "../src/db/schema.ts";
import { pageQuery } from "../src/lib/pagination.ts";
import { registeredRoutes } from "../src/lib/route.ts";
import { unstorableTextIssues } from "../src/lib/validation.ts";
import { db } from "./db.ts";
import { call, seedInstallation, seedPipeline, seedProject, seedWorld } from "./harness.ts";

// Text Postgres cannot store (U+0000, unpaired surrogates), times outside its range and forged cursors are refused
// with a 400 naming the field, before anything is written: one rule for every route (src/lib/validation.ts).

const NUL = "\u0000";

/** JSON text with an escaped unpaired surrogate, as a client would send it (JSON.stringify would escape it the same way). */
const withLoneSurrogate = (json: string) => json.replace("LONE", "\\ud800");

const auditCount = async (teamId: string) => (await db.select().from(auditLogs).where(eq(auditLogs.teamId, teamId))).length;

function expectFieldRefused(response: { status: number; body: any; text: string }, field: string) {
  expect(response.status, response.text).toBe(400);
  expect(response.body.error.code).toBe("VALIDATION_FAILED");
  expect(response.body.error.issues.map((i: { path: string }) => i.path)).toContain(field);
}

describe("text Postgres cannot store", () => {
  it("is refused in names, branches and filters with a 400 naming the field, and nothing is written", async () => {
    const w = await seedWorld();
    const project = await seedProject(w.team.id);
    const before = await auditCount(w.team.id);
    const cases: [string, string, unknown, string][] = [
      ["POST", "/v1/teams", { name: `Acme${NUL}` }, "name"],
      ["POST", "/v1/tokens", { name: `ci${NUL}` }, "name"],
      ["POST", `/v1/teams/${w.team.slug}/cloud-providers`, { name: `hz${NUL}`, provider_type: "local", region: "local" }, "name"],
      ["POST", `/v1/teams/${w.team.slug}/projects`, { name: `Web${NUL}`, repo_url: "acme/web" }, "name"],
      ["POST", `/v1/teams/${w.team.slug}/projects`, { name: "Web", repo_url: "acme/web", default_branch: `main${NUL}` }, "default_branch"],
      ["PATCH", `/v1/projects/${project.id}`, { default_branch: `x${NUL}y` }, "default_branch"],
      ["PATCH", `/v1/teams/${w.team.slug}`, { name: `T${NUL}` }, "name"],
    ];
    for (const [method, path, body, field] of cases) {
      const response = await call(method, path, { token: w.owner.token, body });
      expectFieldRefused(response, field);
      expect(response.body.error.message).toContain("U+0000");
    }
    expectFieldRefused(await call("GET", `/v1/teams/${w.team.slug}/audit-logs?action=%00x`, { token: w.owner.token }), "action");
    expectFieldRefused(await call("GET", `/v1/teams/${w.team.slug}/audit-logs?resource_type=a%00`, { token: w.owner.token }), "resource_type");
    expect(await auditCount(w.team.id)).toBe(before);
  });

  it("refuses unpaired surrogates anywhere in a body, jsonb keys and values included", async () => {
    const w = await seedWorld();
    await seedInstallation(w.team.id, ["acme/web"]);
    const before = await auditCount(w.team.id);
    const token = await call("POST", "/v1/tokens", { token: w.owner.token, body: withLoneSurrogate('{"name":"aLONEb"}') });
    expectFieldRefused(token, "name");
    expect(token.body.error.message).toContain("unpaired surrogate");

    const projects = `/v1/teams/${w.team.slug}/projects`;
    const nested = await call("POST", projects, { token: w.owner.token, body: withLoneSurrogate('{"name":"Web","repo_url":"acme/web","config":{"a":{"b":["ok","xLONE"]}}}') });
    expectFieldRefused(nested, "config.a.b.1");
    const badKey = await call("POST", projects, { token: w.owner.token, body: { name: "Web", repo_url: "acme/web", config: { [`k${NUL}`]: 1 } } });
    expectFieldRefused(badKey, "config");
    expect(badKey.body.error.message).toContain("has a key that must not contain U+0000");
    expect(await auditCount(w.team.id)).toBe(before);

    // A well-formed pair (an emoji) is ordinary text.
    const emoji = await call("POST", projects, { token: w.owner.token, body: { name: "Web \u{1F680}", repo_url: "acme/web", config: { note: "\u{1F680}" } } });
    expect(emoji.status, emoji.text).toBe(201);
    expect(emoji.body.name).toBe("Web \u{1F680}");
  });

  it("checks a deeply nested body without exhausting the stack", () => {
    let deep: unknown = `x${NUL}`;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    const issues = unstorableTextIssues(deep, "json");
    expect(issues).toHaveLength(1);
    expect(issues[0]!.path.split(".")).toHaveLength(200_000);
  });
});

describe("cursors and times outside what Postgres stores", () => {
  const encode = (value: unknown) => btoa(JSON.stringify(value)).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
  const forged = [
    encode(["0000-01-01T00:00:00.000Z", "prj_0123456789abcdef"]),
    encode(["+275760-09-13T00:00:00.000Z", "prj_0123456789abcdef"]),
    encode(["-000001-01-01T00:00:00.000Z", "prj_0123456789abcdef"]),
    encode(["2026-01-01T00:00:00.000Z", `prj_0123${NUL}`]),
    encode(["2026-01-01T00:00:00.000Z", "prj_\ud800"]),
    encode(["2026-01-01T00:00:00.000Z", 42]),
  ];
  const keysetLists = registeredRoutes().filter((route) => route.method === "get" && route.query?.shape.cursor === pageQuery.shape.cursor);

  it("are refused on every keyset list with a 400 naming the cursor", async () => {
    expect(keysetLists.length).toBeGreaterThanOrEqual(9);
    const w = await seedWorld();
    const project = await seedProject(w.team.id);
    const { environment } = await seedPipeline(project.id);
    for (const route of keysetLists) {
      const path = route.path
        .replace(":team", w.team.slug)
        .replace(":id", route.path.startsWith("/v1/projects/") ? project.id : environment.id);
      for (const cursor of forged) {
        const response = await call("GET", `${path}?cursor=${cursor}`, { token: w.owner.token });
        expect(response.status, `${route.path} ${atob(cursor.replaceAll("-", "+").replaceAll("_", "/"))}: ${response.text}`).toBe(400);
        expect(response.body.error.issues).toEqual([{ path: "cursor", message: "invalid cursor" }]);
      }
    }
  });

  it("refuses audit log bounds Postgres cannot compare, and keeps the ones it can", async () => {
    const w = await seedWorld();
    const audit = `/v1/teams/${w.team.slug}/audit-logs`;
    for (const [query, field] of [
      ["since=0000-01-01T00:00:00Z", "since"],
      ["until=0001-01-01T00:30:00%2B01:00", "until"],
    ] as const) {
      const response = await call("GET", `${audit}?${query}`, { token: w.owner.token });
      expectFieldRefused(response, field);
      expect(response.body.error.message).toContain("between 0001-01-01 and 9999-12-31");
    }
    expect((await call("GET", `${audit}?since=0001-01-01T00:00:00Z&until=9999-12-31T23:59:59Z`, { token: w.owner.token })).status).toBe(200);
  });
});

describe("Last-Event-ID on the log stream", () => {
  it("is a 400 when it is not a seq, before any stream starts", async () => {
    const w = await seedWorld();
    const { job } = await seedPipeline((await seedProject(w.team.id)).id);
    await db.update(buildJobs).set({ status: "completed" }).where(eq(buildJobs.id, job.id));
    for (const lastEventId of ["1e300", "-1", "12abc", "9".repeat(16)]) {
      const response = await call("GET", `/v1/jobs/${job.id}/logs/stream`, { token: w.viewer.token, headers: { "Last-Event-ID": lastEventId } });
      expect(response.status, lastEventId).toBe(400);
      expect(response.body.error.issues).toEqual([{ path: "Last-Event-ID", message: expect.stringContaining("whole number") }]);
    }
    const resumed = await call("GET", `/v1/jobs/${job.id}/logs/stream`, { token: w.viewer.token, headers: { "Last-Event-ID": "12" } });
    expect(resumed.status).toBe(200);
    expect(resumed.headers.get("content-type")).toMatch(/^text\/event-stream/);
    expectFieldRefused(await call("GET", `/v1/jobs/${job.id}/logs/stream?after=1e300`, { token: w.viewer.token }), "after");
  });
});
