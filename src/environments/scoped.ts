import { and, eq, inArray, sql } from "drizzle-orm";
import type { Auth } from "../auth/middleware.ts";
import { teamIdsWithRole, type Role } from "../auth/roles.ts";
import type { Db } from "../db/client.ts";
import { buildJobs, environments, projects, workflowRuns } from "../db/schema.ts";
import { explainMiss } from "../lib/access.ts";
import { environmentFailure, prTitleOf } from "./model.ts";

/**
 * Environments, runs and jobs belong to a team through their project. These read one in a single round trip,
 * scoped to the caller's teams: another team's is a 404, a role below `minRole` a 403 (worked out on that path only).
 */
export async function environmentInTeam(db: Db, auth: Auth, id: string, minRole: Role) {
  const [row] = await db
    .select({ environment: environments, prTitle: prTitleOf, failure: environmentFailure, teamId: projects.teamId, project: projects })
    .from(environments)
    .innerJoin(projects, eq(projects.id, environments.projectId))
    .where(and(eq(environments.id, id), inArray(projects.teamId, teamIdsWithRole(auth, minRole))));
  if (row) return row;
  throw await explainMiss(db, auth, {
    what: "environment",
    id,
    teamOf: sql`SELECT p.team_id FROM ${environments} e JOIN ${projects} p ON p.id = e.project_id WHERE e.id = ${id}`,
    minRole,
  });
}

export async function jobInTeam(db: Db, auth: Auth, id: string, minRole: Role) {
  const [row] = await db
    .select({ job: buildJobs, teamId: projects.teamId })
    .from(buildJobs)
    .innerJoin(workflowRuns, eq(workflowRuns.id, buildJobs.workflowRunId))
    .innerJoin(environments, eq(environments.id, workflowRuns.environmentId))
    .innerJoin(projects, eq(projects.id, environments.projectId))
    .where(and(eq(buildJobs.id, id), inArray(projects.teamId, teamIdsWithRole(auth, minRole))));
  if (row) return row;
  throw await explainMiss(db, auth, {
    what: "job",
    id,
    teamOf: sql`SELECT p.team_id FROM ${buildJobs} j JOIN ${workflowRuns} r ON r.id = j.workflow_run_id JOIN ${environments} e ON e.id = r.environment_id JOIN ${projects} p ON p.id = e.project_id WHERE j.id = ${id}`,
    minRole,
  });
}
