import { eq, sql, type SQL } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { auditGitHubChangeWhere } from "../audit/record.ts";
import { buildJobs, environments, githubInstallations, type machineSizes, projects, type runTriggers, workflowRuns } from "../db/schema.ts";
import { installationOfProject, installationStateColumns, type InstallationState } from "../installations/access.ts";
import { newId, newSubdomainHash } from "../lib/ids.ts";

type MachineSize = (typeof machineSizes)[number];

export interface JobSpec {
  name: string;
  architecture: "amd64" | "arm64";
  contextPath: string;
  dockerfilePath: string;
  machine: MachineSize;
  timeoutSeconds: number;
}

export type RunPlan =
  /** `composeFile`: the compose file's text as validated, which the deploy sends. */
  | { ok: true; config: Record<string, unknown>; composeFile: string; jobs: JobSpec[]; previewSize: MachineSize }
  | { ok: false; error: string };

export interface StartRunInput {
  project: { id: string; cloudProviderId: string | null; defaultPreviewSize: MachineSize };
  /** The project's cloud account; the environment records it (and its region) so teardown never depends on later edits. */
  region: string;
  prNumber: number;
  branch: string;
  commit: string;
  /** From GitHub's data about the pull request's head repository, never from a user's request. */
  isFork: boolean;
  trigger: (typeof runTriggers)[number];
  triggeredBy: string | null;
  /** The same for every delivery of one request to build: a redelivery finds the run it made. */
  dedupeKey: string;
  plan: RunPlan;
  /** Every write is conditional on this (e.g. "this webhook is the PR's latest event"). */
  gate: SQL;
  /** For a new environment (an existing one keeps its own): known before, because stagely.yaml may use it. */
  subdomainHash?: string;
  /** Ids chosen before (the API answered with them); default: new ones. */
  runId?: string;
  environmentId?: string;
  /** A run a GitHub webhook started: audited with the GitHub account that sent it (null when GitHub named none). */
  githubSender?: string | null;
}

export type SupersededJob = {
  id: string;
  vm_id: string | null;
  agent_id: string | null;
  cloud_provider_id: string | null;
};

const liveStatuses = sql`('pending', 'building', 'deploying', 'ready', 'failed')`;
const activeRunStatuses = sql`('pending', 'building', 'deploying', 'testing')`;
const activeJobStatuses = sql`('queued', 'provisioning', 'running')`;

/**
 * Creates (or reuses) the pull request's live environment and a run with one build job per build × platform, and
 * cancels the environment's older runs, in one batch. Idempotent: the run's dedupe key makes a second delivery a
 * no-op. A plan that failed (stagely.yaml missing or invalid) makes a failed run carrying the message.
 */
export async function startRun(db: Db, input: StartRunInput, leading: Parameters<Db["batch"]>[0][number][] = []) {
  const { project, plan } = input;
  const liveEnvironment = sql`(SELECT id FROM ${environments} WHERE project_id = ${project.id} AND pr_number = ${input.prNumber} AND status IN ${liveStatuses})`;
  const runId = input.runId ?? newId("workflowRun");
  const size = plan.ok ? plan.previewSize : project.defaultPreviewSize;
  const failed = !plan.ok;
  const jobs = plan.ok ? plan.jobs : [];

  const statements = [
    ...leading,
    db.execute<{ id: string }>(sql`
      INSERT INTO ${environments} (id, project_id, pr_number, branch_name, commit_hash, subdomain_hash, cloud_provider_id, size, region, is_fork)
      SELECT ${input.environmentId ?? newId("environment")}, ${project.id}, ${input.prNumber}, ${input.branch}, ${input.commit}, ${input.subdomainHash ?? newSubdomainHash()},
             ${project.cloudProviderId}, ${size}, ${input.region}, ${input.isFork}
       WHERE ${input.gate}
      ON CONFLICT (project_id, pr_number) WHERE status NOT IN ('terminated', 'reaped')
      DO UPDATE SET branch_name = EXCLUDED.branch_name, commit_hash = EXCLUDED.commit_hash,
                    -- Sticky: once a fork's code ran here, the environment never counts as trusted again.
                    is_fork = ${environments.isFork} OR EXCLUDED.is_fork
      RETURNING id`),
    db.execute<SupersededJob>(sql`
      WITH superseded AS (
        UPDATE ${workflowRuns} SET status = 'cancelled', result = 'cancelled', completed_at = now(),
               error_message = 'superseded by a newer run'
         WHERE environment_id = ${liveEnvironment} AND status IN ${activeRunStatuses}
           AND dedupe_key IS DISTINCT FROM ${input.dedupeKey} AND ${input.gate}
        RETURNING id)
      UPDATE ${buildJobs} SET status = 'cancelled', completed_at = now(), error_message = 'superseded by a newer run'
       WHERE workflow_run_id IN (SELECT id FROM superseded) AND status IN ${activeJobStatuses}
      RETURNING id, vm_id, agent_id, cloud_provider_id`),
    db.execute<{ id: string }>(sql`
      INSERT INTO ${workflowRuns} (id, environment_id, trigger, triggered_by, commit_hash, config, compose_file, status, result, error_message, completed_at, dedupe_key)
      SELECT ${runId}, ${liveEnvironment}, ${input.trigger}, ${input.triggeredBy}, ${input.commit},
             ${plan.ok ? JSON.stringify(plan.config) : null}::jsonb, ${plan.ok ? plan.composeFile : null},
             ${failed ? "failed" : "pending"}, ${failed ? "failure" : null}, ${plan.ok ? null : plan.error},
             ${failed ? sql`now()` : sql`NULL`}, ${input.dedupeKey}
       WHERE ${input.gate}
      ON CONFLICT (dedupe_key) DO NOTHING
      RETURNING id`),
    ...(jobs.length
      ? [
          db.execute(sql`
            INSERT INTO ${buildJobs} (id, workflow_run_id, name, architecture, context_path, dockerfile_path, machine_size, timeout_seconds, cloud_provider_id)
            SELECT job.id, run.id, job.name, job.architecture, job.context_path, job.dockerfile_path, job.machine_size, job.timeout_seconds::int, ${project.cloudProviderId}
              FROM ${workflowRuns} run,
                   (VALUES ${sql.join(
                     jobs.map((j) => sql`(${newId("buildJob")}, ${j.name}, ${j.architecture}, ${j.contextPath}, ${j.dockerfilePath}, ${j.machine}, ${j.timeoutSeconds})`),
                     sql`, `,
                   )}) AS job(id, name, architecture, context_path, dockerfile_path, machine_size, timeout_seconds)
             WHERE run.dedupe_key = ${input.dedupeKey} AND ${input.gate}
            ON CONFLICT (workflow_run_id, name) DO NOTHING`),
        ]
      : []),
    // An environment already admitted under the team's quota starts building at once; a new one waits its turn.
    db.execute(sql`
      UPDATE ${environments}
         SET status = CASE WHEN ${failed} THEN (CASE WHEN status = 'pending' THEN 'failed' ELSE status END) ELSE 'building' END
       WHERE id = ${liveEnvironment} AND ${input.gate}
         AND (${failed} OR status IN ('building', 'deploying', 'ready', 'failed'))`),
    db.execute(sql`
      UPDATE ${workflowRuns} SET status = 'building', started_at = now()
       WHERE dedupe_key = ${input.dedupeKey} AND status = 'pending'
         AND EXISTS (SELECT 1 FROM ${environments} WHERE id = ${liveEnvironment} AND status = 'building')`),
    // Only a run made now is audited (a redelivery finds the run made before, whose id is another).
    ...(input.githubSender !== undefined
      ? [
          auditGitHubChangeWhere(
            db,
            {
              action: "environment.run_started",
              resourceType: "workflow_run",
              resourceId: runId,
              metadata: { sender: input.githubSender, trigger: input.trigger, pr_number: input.prNumber, commit_hash: input.commit },
            },
            {
              from: sql`FROM ${workflowRuns} run JOIN ${environments} env ON env.id = run.environment_id JOIN projects p ON p.id = env.project_id WHERE run.id = ${runId}`,
              teamId: sql`p.team_id`,
              projectId: sql`p.id`,
            },
          ),
        ]
      : []),
    db
      .select({
        id: workflowRuns.id,
        status: workflowRuns.status,
        environment: {
          id: environments.id,
          prNumber: environments.prNumber,
          commitHash: environments.commitHash,
          subdomainHash: environments.subdomainHash,
          githubDeploymentId: environments.githubDeploymentId,
          githubCommentId: environments.githubCommentId,
        },
        installation: installationStateColumns,
      })
      .from(workflowRuns)
      .innerJoin(environments, eq(environments.id, workflowRuns.environmentId))
      .innerJoin(projects, eq(projects.id, environments.projectId))
      .leftJoin(githubInstallations, installationOfProject)
      .where(eq(workflowRuns.dedupeKey, input.dedupeKey)),
  ];
  const results = await db.batch(statements as unknown as Parameters<Db["batch"]>[0]);
  const superseded = (results[leading.length + 1] as { rows: SupersededJob[] }).rows;
  const [made] = results[results.length - 1] as StartedRun[];
  if (!made) return { run: null, environment: null, installation: null, superseded };
  return { run: { id: made.id, environment_id: made.environment.id, status: made.status }, environment: made.environment, installation: made.installation, superseded };
}

/**
 * The run a request to build made (or a redelivery found), with its environment as the batch left it and the state of
 * the project's installation (for `accessFrom`): what reporting to GitHub needs, so the step reads nothing more.
 */
interface StartedRun {
  id: string;
  status: string;
  environment: { id: string; prNumber: number; commitHash: string; subdomainHash: string; githubDeploymentId: number | null; githubCommentId: number | null };
  installation: InstallationState | null;
}
