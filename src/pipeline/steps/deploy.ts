import { agentStub } from "../../agents/issue-token.ts";
import type { EnvironmentDeployReportedEvent } from "../../agents/job-events.ts";
import { loadProjectMasker } from "../../agents/masking.ts";
import { isCommandTooLarge } from "../../agents/protocol.ts";
import { associatedData } from "../../db/encrypted-columns.ts";
import type { DeployedService, secrets } from "../../db/schema.ts";
import { bytesToBase64 } from "../../lib/crypto.ts";
import { isProviderError } from "../../providers/errors.ts";
import type { PipelineContext } from "../context.ts";
import { scheduleTeam } from "../effects.ts";
import { reportToGitHub } from "../github-report.ts";
import { loadDeploy, loadRun, previewUrl } from "../records.ts";
import type { StagelyConfig } from "../stagely-yaml.ts";
import { exposureOf, publishSnapshots } from "../../preview/snapshot.ts";
import { ensurePreviewVm } from "../preview-vm.ts";
import { registryLogin } from "../../registries/resolve.ts";
import { settleDeploy } from "../transitions.ts";

/**
 * `environment.deploy`: the run's images go to the environment's preview VM (made on the first deploy, reused on
 * every later push), with the compose file recorded with the run, the project's secrets and the lifecycle hooks of
 * stagely.yaml.
 */
export async function handleDeploy(ctx: PipelineContext, runId: string): Promise<void> {
  const loaded = await loadDeploy(ctx.db, runId);
  if (!loaded || loaded.run.status !== "deploying") return;
  const { run, environment, provider, jobs } = loaded;
  // Core's own reasons (no compose file, no VM): safe to show on the pull request as they are.
  const fail = (reason: string) => finishDeploy(ctx, runId, false, reason, reason);
  if (!provider) return fail("the environment's cloud provider was removed");

  // Read and validated when the run was planned; runs planned before that was recorded have none.
  const compose = run.composeFile;
  if (compose === null) return fail("the run has no compose file recorded (it was planned by an older Stagely); rebuild the environment");

  let agentId: string | null;
  try {
    agentId = await ensurePreviewVm(ctx, environment, provider, loaded.previewAgentId);
  } catch (error) {
    if (isProviderError(error) && !error.retryable) return fail(`could not create the preview VM: ${error.message}`);
    throw error;
  }
  if (!agentId) return fail("the preview VM has no agent");

  const images: Record<string, string> = {};
  for (const job of jobs.sort((a, b) => (a.architecture === "amd64" ? -1 : 1) - (b.architecture === "amd64" ? -1 : 1))) {
    const service = job.name.replace(/_(amd64|arm64|multi)$/, "");
    if (job.artifactUrl && !images[service]) images[service] = job.artifactUrl;
  }
  // Registry mode: the images are digests in the project's registry, pulled with fresh credentials.
  const registry = Object.values(images).some((image) => !image.startsWith("sha256:")) ? loaded.registry : null;
  let registryAuth = null;
  if (registry) {
    try {
      registryAuth = (await registryLogin(ctx, registry, provider)).auth;
    } catch (error) {
      if (isProviderError(error) && !error.retryable) return fail(`could not log in to the project's ${registry.kind} registry: ${error.message}`);
      throw error;
    }
  }
  const config = run.config as StagelyConfig | null;
  const { envSecrets, files } = environment.isFork ? { envSecrets: [], files: [] } : await deploySecrets(ctx, loaded.secrets, Object.keys(images));
  try {
    await agentStub(ctx.env, agentId).sendCommand({
      type: "DEPLOY",
      job_id: runId,
      images,
      compose_file: compose,
      secrets: envSecrets,
      files,
      lifecycle: { on_start: config?.preview.lifecycle.on_start ?? [] },
      registry_auth: registryAuth,
      // v1.1: what the preview URL reaches (stagely.yaml preview.expose / preview.routes, when the run's config has them).
      preview: exposureOf((run.config as { preview?: unknown } | null)?.preview),
    });
  } catch (error) {
    // Sending it again cannot make it smaller: the deploy fails now, saying why, instead of being retried.
    if (isCommandTooLarge(error)) return fail(`the deploy cannot be sent to the preview VM: ${error.message}`);
    throw error;
  }
}

/**
 * The project's secrets (`rows`, read by loadDeploy) for a deploy. Env secrets: `global` ones apply to every
 * service, a service's scoped ones win on the same key, so each built service gets its merged set (scope = the
 * service) and the rest get `global`. File secrets become files.
 */
async function deploySecrets(ctx: PipelineContext, rows: (typeof secrets.$inferSelect)[], services: string[]) {
  const opened = await Promise.all(rows.map(async (row) => ({ row, value: await ctx.keyring.decrypt(row.encryptedValue, associatedData.secret(row)) })));
  const globals = opened.filter((s) => s.row.secretType === "env" && s.row.scope === "global");
  const envSecrets = globals.map((s) => ({ key: s.row.key, value: s.value, scope: "global" }));
  for (const service of services) {
    const merged = new Map(globals.map((s) => [s.row.key, s.value]));
    for (const s of opened) if (s.row.secretType === "env" && s.row.scope === service) merged.set(s.row.key, s.value);
    for (const [key, value] of merged) envSecrets.push({ key, value, scope: service });
  }
  const files = opened
    .filter((s) => s.row.secretType === "file")
    // The API takes a relative path (no "..", no empty segment); the agent mounts at an absolute container path.
    .map((s) => ({ path: s.row.filePath!.startsWith("/") ? s.row.filePath! : `/${s.row.filePath!}`, content_base64: bytesToBase64(new TextEncoder().encode(s.value)), mode: s.row.filePermissions ?? "0600" }));
  return { envSecrets, files };
}

/**
 * `environment.deploy_reported`: healthy makes the environment ready; a failure fails it with the reason. What the
 * agent reported (service states, the deploy's last lines) is masked with the environment's project secrets before
 * it is stored, and never goes to GitHub (see finishDeploy).
 */
export async function handleDeployReported(ctx: PipelineContext, event: EnvironmentDeployReportedEvent): Promise<void> {
  const unhealthy = event.services.filter((s) => s.health !== undefined && s.health !== null && s.health !== "healthy");
  const healthy = event.state === "completed" || (event.state === "running" && event.services.length > 0 && unhealthy.length === 0);
  const failed = event.state === "failed" || event.state === "terminated";
  if (!healthy && !failed) return;
  const { mask } = await loadProjectMasker(ctx.db, ctx.keyring, { environmentId: event.environment_id }, ctx.logger);
  const services: DeployedService[] = event.services.map((s) => ({
    name: mask(s.name),
    status: mask(s.status),
    health: s.health ? mask(s.health) : null,
    port: s.port ?? null,
  }));
  const reported = services.length > 0 ? services : null;
  if (healthy) return finishDeploy(ctx, event.job_id, true, null, null, reported);
  const detail = services.map((s) => `${s.name}: ${s.status}${s.health ? ` (${s.health})` : ""}`).join(", ");
  const lines = event.last_lines.slice(-20);
  const tail = lines.length ? `\nLast lines of the deploy:\n${lines.join("\n")}` : "";
  return finishDeploy(ctx, event.job_id, false, mask(`the deploy ${event.state}${detail ? `: ${detail}` : ""}${tail}`), null, reported);
}

/**
 * Settles the run and tells GitHub. A failure's text stays with the run (readable by the team); the pull request
 * comment and the deployment status link to it and show at most `publicReason`, a reason of Core's own, never what
 * the agent reported: a comment is public on a public repository.
 */
async function finishDeploy(
  ctx: PipelineContext,
  runId: string,
  healthy: boolean,
  error: string | null,
  publicReason: string | null,
  services: DeployedService[] | null = null,
): Promise<void> {
  const { changed, snapshots, teamHasWaitingWork } = await settleDeploy(ctx.db, runId, healthy, error, services);
  await publishSnapshots(ctx.env, snapshots, ctx.logger);
  if (!changed) return;
  const target = await loadRun(ctx.db, runId);
  if (!target) return;
  const url = previewUrl(target.environment.subdomainHash, ctx.config);
  const details = `${ctx.config.PUBLIC_URL}/v1/runs/${runId}`;
  await reportToGitHub(
    ctx,
    target,
    healthy ? "success" : "failure",
    healthy ? { message: `The preview is ready at ${url}`, runId } : { message: `The deploy failed. What happened: ${details}`, detail: publicReason ?? undefined, runId },
  );
  if (teamHasWaitingWork) await scheduleTeam(ctx, target.project.teamId);
}
