import { generateToken } from "../../../src/auth/tokens.ts";
import { getDb } from "../../../src/db/client.ts";
import { apiTokens, projects, teamMembers, teams, users } from "../../../src/db/schema.ts";
import { newId } from "../../../src/lib/ids.ts";
import { runLoad } from "../load.ts";
import type { BenchScenario } from "../types.ts";

/** The management API's main routes with a real token: latency, throughput and round trips per request. */
export const apiScenario: BenchScenario = {
  name: "api",
  async run({ target, total, concurrency, log }) {
    const db = getDb(target.local.databaseUrl(target.database));
    const teamId = newId("team");
    const projectId = newId("project");
    // The mutation rate limit is per user (120/min), so writes rotate over enough users (owners of the team, one
    // token each) to stay under it.
    const perCase = Math.ceil(total / 100);
    const tokens = await Promise.all(Array.from({ length: perCase * 2 }, () => generateToken("api")));
    const userIds = tokens.map(() => newId("user"));
    await db.batch([
      db.insert(teams).values({ id: teamId, slug: `bench-${teamId.slice(5)}`, name: "Bench" }),
      db.insert(projects).values({ id: projectId, teamId, slug: "bench", name: "Bench", repoUrl: "https://github.com/acme/bench" }),
      ...userIds.map((userId) => db.insert(users).values({ id: userId, email: `${userId}@bench.test` })),
      ...userIds.map((userId) => db.insert(teamMembers).values({ teamId, userId, role: "owner" })),
      ...tokens.map((t, i) =>
        db.insert(apiTokens).values({ id: newId("token"), userId: userIds[i]!, kind: "api", name: "bench", tokenHash: t.hash, tokenHint: t.hint, lastUsedAt: new Date() }),
      ),
    ]);
    // `set` picks a separate group of users for each writing case.
    const auth = (i: number, set = 0) => ({ Authorization: `Bearer ${tokens[set * perCase + Math.floor(i / 100)]!.token}`, "Content-Type": "application/json" });
    const slug = `bench-${teamId.slice(5)}`;
    const cases: { name: string; request: (i: number) => Promise<Response>; status: number }[] = [
      { name: "GET /v1/me", status: 200, request: (i) => fetch(`${target.apiUrl}/v1/me`, { headers: auth(i) }) },
      { name: "GET /v1/projects/:id", status: 200, request: (i) => fetch(`${target.apiUrl}/v1/projects/${projectId}`, { headers: auth(i) }) },
      { name: "GET /v1/teams/:team/projects", status: 200, request: (i) => fetch(`${target.apiUrl}/v1/teams/${slug}/projects`, { headers: auth(i) }) },
      {
        name: "PATCH /v1/projects/:id",
        status: 200,
        request: (i) => fetch(`${target.apiUrl}/v1/projects/${projectId}`, { method: "PATCH", headers: auth(i), body: JSON.stringify({ name: `Bench ${i}` }) }),
      },
      {
        name: "POST /v1/projects/:id/secrets",
        status: 201,
        request: (i) =>
          fetch(`${target.apiUrl}/v1/projects/${projectId}/secrets`, { method: "POST", headers: auth(i, 1), body: JSON.stringify({ key: `KEY_${i}_${Date.now()}`, value: "bench-secret-value" }) }),
      },
    ];
    const rows = [];
    for (const c of cases) {
      log(`${c.name}: ${total} requests at concurrency ${concurrency} ...`);
      await target.resetDbStats();
      const result = await runLoad({ total, concurrency, makeRequest: c.request, expectStatus: c.status });
      const stats = await target.dbStats();
      rows.push({ scenario: c.name, ...result, db_round_trips_per_request: Number((stats.round_trips / total).toFixed(2)) });
    }
    return rows;
  },
};
