import { useEffect, useState } from "hono/jsx/dom";
import { api, type CloudProvider, type Environment, type Job, type Page, type Project, type Run } from "../api.ts";
import { ActionButton, Empty, ErrorNote, Loading, PageHeader, StatusBadge } from "../components.tsx";
import { ago, dateTime, duration, repoName, shortSha } from "../format.ts";
import { useResource } from "../hooks.ts";
import { LogPanel } from "../logs/log-panel.tsx";
import type { TeamPageProps } from "../main.tsx";
import { can } from "../roles.ts";
import { finalEnvironmentStatuses } from "./environments.tsx";
import { ShareTokens } from "./share-tokens.tsx";

const liveRunStatuses = new Set(["pending", "building", "deploying", "testing"]);
const REFRESH_MS = 3000;

export function EnvironmentPage({ team, role, id }: TeamPageProps & { id: string }) {
  // While anything can still change, the page refreshes itself.
  const environment = useResource<Environment>(`/v1/environments/${id}`, REFRESH_MS, (e) => !finalEnvironmentStatuses.has(e.status));
  const env = environment.data;
  const live = env ? !finalEnvironmentStatuses.has(env.status) : false;
  const runs = useResource<Page<Run>>(`/v1/environments/${id}/runs?limit=20`, live ? REFRESH_MS : undefined);
  const project = useResource<Project>(env ? `/v1/projects/${env.project_id}` : null);
  const provider = useResource<CloudProvider>(env?.cloud_provider_id ? `/v1/cloud-providers/${env.cloud_provider_id}` : null);
  const [chosenRun, setChosenRun] = useState<string | null>(null);
  const runId = chosenRun ?? runs.data?.data[0]?.id ?? null;

  if (environment.error) return <ErrorNote error={environment.error} />;
  if (!env) return <Loading what="the environment" />;
  const member = can(role, "member");
  return (
    <section>
      <PageHeader title={<>PR #{env.pr_number}{env.pr_title && <span class="pr-title-heading">: {env.pr_title}</span>}</>}>
        {member && live && (
          <>
            <ActionButton label="Rebuild" busyLabel="Queueing…" onAction={async () => {
              await api("POST", `/v1/environments/${id}/rebuild`);
              runs.reload();
            }} />
            <ActionButton label="Delete" danger confirm={`Tear down the preview of PR #${env.pr_number}? Its VMs are terminated.`} onAction={async () => {
              await api("DELETE", `/v1/environments/${id}`);
              environment.reload();
            }} />
          </>
        )}
      </PageHeader>
      <dl class="facts">
        <div>
          <dt>Status</dt>
          <dd>
            <StatusBadge status={env.status} />
          </dd>
        </div>
        <div>
          <dt>Preview</dt>
          <dd>
            {env.status === "ready" ? (
              <a href={env.url} target="_blank" rel="noopener noreferrer" class="wrap">
                {env.url}
              </a>
            ) : (
              <span class="muted">not ready</span>
            )}
          </dd>
        </div>
        <div>
          <dt>Project</dt>
          <dd>
            {project.data ? <a href={`/t/${team}/projects/${project.data.id}`}>{project.data.name}</a> : "…"}
            {project.data && <div class="muted small">{repoName(project.data.repo_url)}</div>}
          </dd>
        </div>
        <div>
          <dt>Branch · commit</dt>
          <dd>
            {env.branch_name} · <code>{shortSha(env.commit_hash)}</code>
            {env.is_fork && <span class="badge badge-off">fork</span>}
          </dd>
        </div>
        <div>
          <dt>Age</dt>
          <dd title={dateTime(env.created_at)}>{ago(env.created_at)}</dd>
        </div>
        <div>
          <dt>Last request</dt>
          <dd title={dateTime(env.last_request_at)}>{env.last_request_at ? ago(env.last_request_at) : "none yet"}</dd>
        </div>
        <div>
          <dt>Last heartbeat</dt>
          <dd>{ago(env.last_heartbeat_at)}</dd>
        </div>
        <div>
          <dt>Machine</dt>
          <dd>
            {env.size} · {env.region}
            {provider.data && (
              <>
                {" "}
                · {provider.data.name} ({provider.data.provider_type})
              </>
            )}
            <div class="muted small">VM {env.vm_status}</div>
          </dd>
        </div>
      </dl>

      <h2>Runs</h2>
      <ErrorNote error={runs.error} />
      {!runs.data ? (
        <Loading what="runs" />
      ) : runs.data.data.length === 0 ? (
        <Empty>No runs yet.</Empty>
      ) : (
        <ol class="runs">
          {runs.data.data.map((run) => (
            <li>
              <button type="button" class="run" aria-pressed={run.id === runId} onClick={() => setChosenRun(run.id)}>
                <StatusBadge status={run.status} />
                <span>{run.trigger.replaceAll("_", " ")}</span>
                <code>{shortSha(run.commit_hash)}</code>
                <span class="muted">{ago(run.created_at)}</span>
              </button>
            </li>
          ))}
        </ol>
      )}
      {runId && <RunDetail key={runId} runId={runId} listedStatus={runs.data?.data.find((r) => r.id === runId)?.status} role={role} />}
      <ShareTokens environmentId={id} role={role} live={live} />
      {!live && (
        <p>
          <a href={`/t/${team}/environments`}>Back to the environments</a>
        </p>
      )}
    </section>
  );
}

function RunDetail({ runId, listedStatus, role }: { runId: string; listedStatus: string | undefined; role: TeamPageProps["role"] }) {
  const detail = useResource<Run & { jobs: Job[] }>(`/v1/runs/${runId}`, REFRESH_MS, (r) => liveRunStatuses.has(r.status));
  const run = detail.data;
  // The list of runs may see a new status first: catch up at once rather than at the next refresh.
  useEffect(() => {
    if (listedStatus && run && listedStatus !== run.status) detail.reload();
  }, [listedStatus]);
  const [chosenJob, setChosenJob] = useState<string | null>(null);
  if (detail.error) return <ErrorNote error={detail.error} />;
  if (!run) return <Loading what="the run" />;
  const job = run.jobs.find((j) => j.id === chosenJob) ?? run.jobs.find((j) => j.status === "running") ?? run.jobs[0];
  return (
    <div class="run-detail">
      <div class="page-header">
        <h2>
          Run <code>{shortSha(run.commit_hash)}</code> <StatusBadge status={run.status} />
        </h2>
        {can(role, "member") && liveRunStatuses.has(run.status) && (
          <div class="actions">
            <ActionButton label="Cancel run" danger confirm="Cancel this run? Its builders are terminated." onAction={async () => {
              await api("POST", `/v1/runs/${runId}/cancel`);
              detail.reload();
            }} />
          </div>
        )}
      </div>
      <p class="muted small">
        {run.triggered_by ? `by ${run.triggered_by} · ` : ""}
        {run.started_at ? `started ${ago(run.started_at)}` : "waiting to start"}
        {run.duration_seconds !== null ? ` · took ${duration(run.duration_seconds)}` : ""}
      </p>
      <h3>Deploy</h3>
      {run.deploy_services && (
        <ul class="services" aria-label="Services">
          {run.deploy_services.map((service) => (
            <li data-service={service.name}>
              <code>{service.name}</code> <StatusBadge status={service.health ?? service.status} />
              <span class="muted small">
                {service.health ? ` ${service.status}` : ""}
                {service.port !== null ? ` · port ${service.port}` : ""}
              </span>
            </li>
          ))}
        </ul>
      )}
      {run.error_message ? (
        <pre class="deploy-result text-bad">{run.error_message}</pre>
      ) : run.status === "completed" ? (
        <p class="text-ok">{run.deploy_services ? "Every service came up healthy." : "Deployed."}</p>
      ) : (
        <p class="muted">{run.status === "deploying" ? "Deploying…" : "Not deployed yet."}</p>
      )}
      <h3>Build jobs</h3>
      {run.jobs.length === 0 ? (
        <Empty>This run has no build jobs.</Empty>
      ) : (
        <>
          <div class="job-tabs" role="group" aria-label="Build jobs">
            {run.jobs.map((j) => (
              <button type="button" aria-pressed={j.id === job?.id} onClick={() => setChosenJob(j.id)}>
                {j.name} <StatusBadge status={j.status} />
              </button>
            ))}
          </div>
          {job?.error_message && <p class="text-bad">{job.error_message}</p>}
          {job && <LogPanel key={job.id} jobId={job.id} jobName={job.name} />}
        </>
      )}
    </div>
  );
}
