import { useState } from "hono/jsx/dom";
import type { CloudProvider, Environment, Page, Project } from "../api.ts";
import { Empty, ErrorNote, Loading, LoadMore, PageHeader, StatusBadge, TableHead } from "../components.tsx";
import { ago, shortSha } from "../format.ts";
import { usePagedList, useResource } from "../hooks.ts";
import type { TeamPageProps } from "../main.tsx";

/** Statuses after which an environment changes no more (the list stops refreshing for them). */
export const finalEnvironmentStatuses = new Set(["terminated", "reaped", "failed"]);

const REFRESH_MS = 5000;

export function TeamEnvironments({ team }: TeamPageProps) {
  return (
    <section>
      <PageHeader title="Environments" />
      <EnvironmentList team={team} path={`/v1/teams/${team}/environments`} />
    </section>
  );
}

/** Preview environments from `path` (a team's or a project's list), live ones unless "show ended" is on. */
export function EnvironmentList({ team, path }: { team: string; path: string }) {
  const [all, setAll] = useState(false);
  const list = usePagedList<Environment>(`${path}?status=${all ? "all" : "live"}&limit=50`, REFRESH_MS);
  const projects = useResource<Page<Project>>(`/v1/teams/${team}/projects?limit=100`);
  const providers = useResource<Page<CloudProvider>>(`/v1/teams/${team}/cloud-providers?limit=100`);
  const projectName = (id: string) => projects.data?.data.find((p) => p.id === id)?.name ?? "";
  const providerName = (id: string | null) => providers.data?.data.find((p) => p.id === id)?.name ?? "";
  return (
    <>
      <label class="check">
        <input type="checkbox" checked={all} onChange={(event: Event) => setAll((event.target as HTMLInputElement).checked)} /> Show ended environments
      </label>
      <ErrorNote error={list.error} />
      {!list.items ? (
        <Loading what="environments" />
      ) : list.items.length === 0 ? (
        <Empty>No {all ? "" : "live "}preview environments. Open a pull request in a connected repository to get one.</Empty>
      ) : (
        <div class="table-wrap">
          <table class="environments">
            <TableHead columns={["Pull request", "Project", "Branch · commit", "Status", "Preview", "Age", "Last request", "Machine"]} />
            <tbody>
              {list.items.map((env) => (
                <tr data-environment={env.id}>
                  <td>
                    <a href={`/t/${team}/environments/${env.id}`}>PR #{env.pr_number}</a>
                    {env.is_fork && <span class="badge badge-off">fork</span>}
                    {env.pr_title && <div class="pr-title">{env.pr_title}</div>}
                  </td>
                  <td>{projectName(env.project_id)}</td>
                  <td>
                    {env.branch_name} · <code>{shortSha(env.commit_hash)}</code>
                  </td>
                  <td>
                    <StatusBadge status={env.status} />
                  </td>
                  <td>{env.status === "ready" ? <a href={env.url} target="_blank" rel="noopener noreferrer">Open</a> : <span class="muted">—</span>}</td>
                  <td title={env.created_at}>{ago(env.created_at)}</td>
                  <td title={env.last_request_at ?? undefined}>{env.last_request_at ? ago(env.last_request_at) : <span class="muted">none yet</span>}</td>
                  <td class="small">
                    {env.size} · {env.region}
                    {env.cloud_provider_id && <> · {providerName(env.cloud_provider_id)}</>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <LoadMore list={list} />
    </>
  );
}
