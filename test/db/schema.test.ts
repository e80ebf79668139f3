import { eq, sql as dsql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { databaseErrorOf } from "../../src/db/client.ts";
import {
  agentConnections, auditLogs, buildJobs, buildLogs, cloudProviders, environments, projects, secrets, teamMembers, teams,
  users, workflowRuns,
} from "../../src/db/schema.ts";
import { randomHex } from "../../src/lib/crypto.ts";
import { newId, newSubdomainHash } from "../../src/lib/ids.ts";
import { db } from "../db.ts";

async function seedTree() {
  const teamId = newId("team");
  const userId = newId("user");
  const providerId = newId("cloudProvider");
  const projectId = newId("project");
  const environmentId = newId("environment");
  const runId = newId("workflowRun");
  const jobId = newId("buildJob");
  await db.batch([
    db.insert(teams).values({ id: teamId, slug: `t-${teamId.slice(5)}`, name: "Team" }),
    db.insert(users).values({ id: userId, email: `${userId}@example.com` }),
    db.insert(teamMembers).values({ teamId, userId, role: "owner" }),
    db.insert(cloudProviders).values({ id: providerId, teamId, name: "aws", providerType: "aws", encryptedCredentials: "x", region: "eu-west-1" }),
    db.insert(projects).values({ id: projectId, teamId, slug: "web", name: "Web", repoUrl: "https://github.com/acme/web", cloudProviderId: providerId }),
    db.insert(environments).values({
      id: environmentId, projectId, prNumber: 7, branchName: "feature", commitHash: "abc123", subdomainHash: newSubdomainHash(),
      cloudProviderId: providerId, size: "medium", region: "eu-west-1",
    }),
    db.insert(workflowRuns).values({ id: runId, environmentId, trigger: "pr_opened", commitHash: "abc123" }),
    db.insert(buildJobs).values({ id: jobId, workflowRunId: runId, name: "api_amd64", architecture: "amd64", contextPath: "./api", dockerfilePath: "./api/Dockerfile", cloudProviderId: providerId }),
    db.insert(buildLogs).values({ buildJobId: jobId, seq: 1, timestamp: new Date(), stream: "stdout", line: "hello" }),
    db.insert(secrets).values({ id: newId("secret"), projectId, key: "API_KEY", encryptedValue: "x", createdBy: userId }),
    db.insert(agentConnections).values({ agentId: newId("agent"), buildJobId: jobId, role: "builder", tokenHash: randomHex(32) }),
    db.insert(auditLogs).values({ id: newId("auditLog"), action: "project.created", resourceType: "project", resourceId: projectId, teamId, projectId, actorId: userId }),
  ]);
  return { teamId, userId, providerId, projectId, environmentId, runId, jobId };
}

async function codeOf(work: Promise<unknown>) {
  try {
    await work;
  } catch (error) {
    const dbError = databaseErrorOf(error);
    return `${dbError?.code} ${dbError?.constraint}`;
  }
  return "no error";
}

describe("schema rules", () => {
  it("allows one live environment per PR, and a new one once the old is terminated", async () => {
    const { projectId, environmentId } = await seedTree();
    const second = () =>
      db.insert(environments).values({
        id: newId("environment"), projectId, prNumber: 7, branchName: "feature", commitHash: "def", subdomainHash: newSubdomainHash(), size: "small", region: "x",
      });
    expect(await codeOf(second())).toBe("23505 environments_one_live_per_pr");
    await db.update(environments).set({ status: "terminated" }).where(eq(environments.id, environmentId));
    await second();
    expect(await codeOf(second())).toBe("23505 environments_one_live_per_pr");
  });

  it("keeps updated_at current on update", async () => {
    const { teamId } = await seedTree();
    const [before] = await db.select().from(teams).where(eq(teams.id, teamId));
    await db.execute(dsql`SELECT pg_sleep(0.01)`);
    const [after] = await db.update(teams).set({ name: "Renamed" }).where(eq(teams.id, teamId)).returning();
    expect(after!.updatedAt.getTime()).toBeGreaterThan(before!.updatedAt.getTime());
    expect(after!.createdAt).toEqual(before!.createdAt);
  });

  it("deletes a team with everything below it, and keeps its audit history", async () => {
    const { teamId, userId, projectId, jobId } = await seedTree();
    await db.delete(teams).where(eq(teams.id, teamId));
    expect(await db.select().from(projects).where(eq(projects.id, projectId))).toEqual([]);
    expect(await db.select().from(buildLogs).where(eq(buildLogs.buildJobId, jobId))).toEqual([]);
    expect(await db.select().from(agentConnections).where(eq(agentConnections.buildJobId, jobId))).toEqual([]);
    expect(await db.select().from(teamMembers).where(eq(teamMembers.teamId, teamId))).toEqual([]);
    expect(await db.select({ id: users.id }).from(users).where(eq(users.id, userId))).toHaveLength(1);
    expect(await db.select().from(auditLogs).where(eq(auditLogs.teamId, teamId))).toHaveLength(1);
  });

  it("never blocks deleting a cloud provider or a user: references become null", async () => {
    const { providerId, projectId, environmentId, userId } = await seedTree();
    await db.delete(cloudProviders).where(eq(cloudProviders.id, providerId));
    const [project] = await db.select().from(projects).where(eq(projects.id, projectId));
    const [environment] = await db.select().from(environments).where(eq(environments.id, environmentId));
    expect(project!.cloudProviderId).toBeNull();
    expect(environment!.cloudProviderId).toBeNull();
    await db.delete(users).where(eq(users.id, userId));
    const [secret] = await db.select().from(secrets).where(eq(secrets.projectId, projectId));
    expect(secret!.createdBy).toBeNull();
    expect(await db.select().from(auditLogs).where(eq(auditLogs.actorId, userId))).toHaveLength(1);
  });

  it("enforces the checks: slugs, statuses, one log line per (job, seq), agent assignment", async () => {
    const { jobId, environmentId } = await seedTree();
    expect(await codeOf(db.insert(teams).values({ id: newId("team"), slug: "-bad-", name: "x" }))).toBe("23514 teams_slug_format");
    expect(await codeOf(db.update(environments).set({ status: "exploded" as never }).where(eq(environments.id, environmentId)))).toBe(
      "23514 environments_status_valid",
    );
    expect(await codeOf(db.insert(buildLogs).values({ buildJobId: jobId, seq: 1, timestamp: new Date(), stream: "stdout", line: "again" }))).toBe(
      "23505 build_logs_job_seq_key",
    );
    expect(
      await codeOf(db.insert(agentConnections).values({ agentId: newId("agent"), environmentId, buildJobId: jobId, role: "preview", tokenHash: randomHex(32) })),
    ).toBe("23514 agent_connections_assignment");
  });

  it("reuses a soft-deleted team's slug", async () => {
    const { teamId } = await seedTree();
    const [team] = await db.update(teams).set({ deletedAt: new Date() }).where(eq(teams.id, teamId)).returning();
    await db.insert(teams).values({ id: newId("team"), slug: team!.slug, name: "Successor" });
  });
});
