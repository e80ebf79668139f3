import { useState } from "hono/jsx/dom";
import { api, machineSizes, type CloudProvider, type Installation, type Page, type Project, type Secret } from "../api.ts";
import { ActionButton, Empty, ErrorNote, Field, Loading, LoadMore, PageHeader, TableHead, useSubmit } from "../components.tsx";
import { ago, repoName } from "../format.ts";
import { usePagedList, useResource } from "../hooks.ts";
import type { TeamPageProps } from "../main.tsx";
import { can } from "../roles.ts";
import { navigate } from "../router.ts";
import { EnvironmentList } from "./environments.tsx";

export function Projects({ team, role }: TeamPageProps) {
  const list = usePagedList<Project>(`/v1/teams/${team}/projects?limit=100`);
  return (
    <section>
      <PageHeader title="Projects">
        {can(role, "admin") && (
          <a class="button primary" href={`/t/${team}/projects/new`}>
            New project
          </a>
        )}
      </PageHeader>
      <ErrorNote error={list.error} />
      {!list.items ? (
        <Loading what="projects" />
      ) : list.items.length === 0 ? (
        <Empty>No projects yet. A project connects a GitHub repository: every pull request gets a preview.</Empty>
      ) : (
        <ul class="cards">
          {list.items.map((project) => (
            <li class="card">
              <h2>
                <a href={`/t/${team}/projects/${project.id}`}>{project.name}</a>
              </h2>
              <p>
                <code>{repoName(project.repo_url)}</code> · {project.default_branch}
                {project.preview_access === "public" && <span class="badge badge-wait">public previews</span>}
                {!project.is_active && <span class="badge badge-off">paused</span>}
              </p>
              <p class="muted small">Created {ago(project.created_at)}</p>
            </li>
          ))}
        </ul>
      )}
      <LoadMore list={list} />
    </section>
  );
}

const previewAccessChoices = {
  team: "Team only (members, signed in with GitHub)",
  public: "Public (anyone with the link)",
} as const;

/** The repositories the team's installations cover (not while suspended), by name: the ones a project may name. */
function coveredRepositories(installations: Installation[]): string[] {
  const names = installations.filter((i) => !i.suspended_at).flatMap((i) => i.repositories.map((r) => r.full_name.toLowerCase()));
  return [...new Set(names)].sort();
}

/** The link that installs the Stagely GitHub App for this team (asked for when shown: it is valid 30 minutes, for the caller only). */
export function InstallAppLink({ team, label, primary }: { team: string; label: string; primary?: boolean }) {
  const link = useResource<{ url: string }>(`/v1/teams/${team}/github/install-url`);
  // Next to a working form, a server without a GitHub App (local development) is a remark, not an alert.
  if (link.error) return primary ? <ErrorNote error={link.error} /> : <span class="muted">{link.error.message}</span>;
  if (!link.data) return <Loading what="the GitHub App link" />;
  return (
    <a class={primary ? "button primary" : "button"} href={link.data.url}>
      {label}
    </a>
  );
}

/** What came back from GitHub's install page (the callback adds it to the address). */
function InstallOutcome({ url }: { url: URL }) {
  const outcome = url.searchParams.get("github_installation");
  if (!outcome) return null;
  return (
    <p class="note" role="status">
      {outcome === "requested"
        ? "GitHub asked the organization's owners to approve the installation; its repositories appear here once they do."
        : "The GitHub App is installed: its repositories are listed below."}
    </p>
  );
}

/** Project fields shared by the create and settings forms. */
function ProjectFields({ project, providers, repositories }: { project?: Project; providers: CloudProvider[]; repositories: string[] }) {
  const current = project ? repoName(project.repo_url) : undefined;
  const choices = current && !repositories.includes(current) ? [current, ...repositories] : repositories;
  return (
    <>
      <Field label="Name">
        <input name="name" required maxLength={100} value={project?.name ?? ""} />
      </Field>
      <Field label="GitHub repository" hint="The repositories the team's GitHub App installations cover.">
        <select name="repo_url" required>
          {!current && <option value="">Choose a repository</option>}
          {choices.map((name) => (
            <option value={name} selected={name === current}>
              {name}
            </option>
          ))}
        </select>
      </Field>
      <Field label="Default branch">
        <input name="default_branch" required value={project?.default_branch ?? "main"} />
      </Field>
      <Field label="Cloud provider" hint="Where this project's previews and builds run.">
        <select name="cloud_provider_id">
          <option value="">none yet</option>
          {providers.map((p) => (
            <option value={p.id} selected={p.id === project?.cloud_provider_id}>
              {p.name} ({p.provider_type}, {p.region})
            </option>
          ))}
        </select>
      </Field>
      <Field label="Preview size" hint="stagely.yaml may choose another.">
        <select name="default_preview_size">
          {machineSizes.map((size) => (
            <option value={size} selected={size === (project?.default_preview_size ?? "medium")}>
              {size}
            </option>
          ))}
        </select>
      </Field>
      <Field label="Who may open previews" hint="Share links open a team-only preview for someone outside the team.">
        <select name="preview_access">
          {(Object.keys(previewAccessChoices) as (keyof typeof previewAccessChoices)[]).map((mode) => (
            <option value={mode} selected={mode === (project?.preview_access ?? "team")}>
              {previewAccessChoices[mode]}
            </option>
          ))}
        </select>
      </Field>
      <Field label="Preview lifetime (hours)">
        <input name="preview_ttl_hours" type="number" min={1} max={720} required value={String(project?.preview_ttl_hours ?? 24)} />
      </Field>
      <label class="check">
        <input name="fork_previews" type="checkbox" checked={project?.fork_previews ?? false} /> Build previews for pull requests from forks (they never get
        secrets)
      </label>
    </>
  );
}

function projectBody(data: FormData) {
  return {
    name: data.get("name"),
    repo_url: data.get("repo_url"),
    default_branch: data.get("default_branch"),
    cloud_provider_id: data.get("cloud_provider_id") || null,
    default_preview_size: data.get("default_preview_size"),
    preview_ttl_hours: Number(data.get("preview_ttl_hours")),
    fork_previews: data.get("fork_previews") === "on",
    preview_access: data.get("preview_access"),
  };
}

export function NewProject({ team, url }: TeamPageProps) {
  const providers = useResource<Page<CloudProvider>>(`/v1/teams/${team}/cloud-providers?limit=100`);
  const installations = useResource<Page<Installation>>(`/v1/teams/${team}/github/installations?limit=100`);
  const create = useSubmit(async (data) => {
    const project = await api<Project>("POST", `/v1/teams/${team}/projects`, projectBody(data));
    navigate(`/t/${team}/projects/${project.id}`);
  });
  const repositories = installations.data ? coveredRepositories(installations.data.data) : [];
  return (
    <section>
      <PageHeader title="New project" />
      <InstallOutcome url={url} />
      <ErrorNote error={providers.error ?? installations.error} />
      {!providers.data || !installations.data ? (
        <Loading what="repositories and cloud providers" />
      ) : repositories.length === 0 ? (
        <div class="note">
          <p>
            A project builds a GitHub repository that the Stagely GitHub App is installed on. No installation of this team covers a repository yet
            {installations.data.data.some((i) => i.suspended_at) ? " (a suspended installation builds nothing)" : ""}.
          </p>
          <InstallAppLink team={team} label="Install the GitHub App" primary />
        </div>
      ) : (
        <form class="stack-form" onSubmit={create.onSubmit}>
          <p class="muted small">
            Missing a repository? <InstallAppLink team={team} label="Add repositories on GitHub" />
          </p>
          <ProjectFields providers={providers.data.data} repositories={repositories} />
          <ErrorNote error={create.error} />
          <button type="submit" class="primary" disabled={create.busy}>
            Create project
          </button>
        </form>
      )}
    </section>
  );
}

const tabs = [
  { id: "environments", label: "Environments" },
  { id: "secrets", label: "Secrets" },
  { id: "settings", label: "Settings" },
] as const;

export function ProjectPage({ team, role, url, id }: TeamPageProps & { id: string }) {
  const project = useResource<Project>(`/v1/projects/${id}`);
  const tab = tabs.find((t) => t.id === url.searchParams.get("tab"))?.id ?? "environments";
  if (project.error) return <ErrorNote error={project.error} />;
  if (!project.data) return <Loading what="the project" />;
  const p = project.data;
  return (
    <section>
      <PageHeader title={p.name} />
      <p class="muted">
        <code>{repoName(p.repo_url)}</code> · default branch {p.default_branch} · previews {p.preview_access === "public" ? "public" : "team only"}
      </p>
      <nav class="tabs" aria-label="Project">
        {tabs.map((t) => (
          <a href={`/t/${team}/projects/${id}?tab=${t.id}`} aria-current={t.id === tab ? "page" : undefined}>
            {t.label}
          </a>
        ))}
      </nav>
      {tab === "environments" && <EnvironmentList team={team} path={`/v1/projects/${id}/environments`} />}
      {tab === "secrets" && <Secrets projectId={id} role={role} />}
      {tab === "settings" && <ProjectSettings team={team} role={role} project={p} onSaved={project.reload} />}
    </section>
  );
}

function ProjectSettings({ team, role, project, onSaved }: { team: string; role: TeamPageProps["role"]; project: Project; onSaved: () => void }) {
  const providers = useResource<Page<CloudProvider>>(`/v1/teams/${team}/cloud-providers?limit=100`);
  const installations = useResource<Page<Installation>>(`/v1/teams/${team}/github/installations?limit=100`);
  const admin = can(role, "admin");
  const [savedAt, setSavedAt] = useState<string | null>(null);
  const save = useSubmit(
    async (data) => {
      const { repo_url, ...rest } = projectBody(data);
      // The repository is sent only when it changes: the API checks that an installation covers a new one.
      const changes = repo_url === repoName(project.repo_url) ? rest : { ...rest, repo_url };
      await api("PATCH", `/v1/projects/${project.id}`, { ...changes, is_active: data.get("is_active") === "on" });
      setSavedAt(new Date().toLocaleTimeString());
      onSaved();
    },
    { keep: true },
  );
  const loadFailure = providers.error ?? installations.error;
  if (loadFailure) return <ErrorNote error={loadFailure} />;
  if (!providers.data || !installations.data) return <Loading what="settings" />;
  return (
    <>
      <form class="stack-form" onSubmit={save.onSubmit}>
        <fieldset disabled={!admin}>
          {!admin && <legend class="muted">Only admins and owners change project settings.</legend>}
          <ProjectFields project={project} providers={providers.data.data} repositories={coveredRepositories(installations.data.data)} />
          <label class="check">
            <input name="is_active" type="checkbox" checked={project.is_active} /> Active (pull requests get previews)
          </label>
        </fieldset>
        <ErrorNote error={save.error} />
        {admin && (
          <div class="actions">
            <button type="submit" class="primary" disabled={save.busy}>
              Save settings
            </button>
            <span class="muted small" role="status">
              {savedAt && !save.error ? `Saved at ${savedAt}.` : ""}
            </span>
          </div>
        )}
      </form>
      {admin && (
        <div class="danger-zone">
          <h2>Delete the project</h2>
          <ActionButton
            label="Delete project"
            danger
            confirm={`Delete the project ${project.name} and its secrets?`}
            onAction={async () => {
              await api("DELETE", `/v1/projects/${project.id}`);
              navigate(`/t/${team}/projects`);
            }}
          />
        </div>
      )}
    </>
  );
}

/** Secrets are write-only: the list shows keys and settings; values can be set, replaced and deleted, never read. */
function Secrets({ projectId, role }: { projectId: string; role: TeamPageProps["role"] }) {
  const list = usePagedList<Secret>(`/v1/projects/${projectId}/secrets?limit=100`);
  const admin = can(role, "admin");
  const [type, setType] = useState<"env" | "file">("env");
  const [replacing, setReplacing] = useState<string | null>(null);
  const add = useSubmit(async (data) => {
    await api("POST", `/v1/projects/${projectId}/secrets`, {
      key: data.get("key"),
      value: data.get("value"),
      scope: data.get("scope") || "global",
      secret_type: type,
      ...(type === "file" ? { file_path: data.get("file_path"), file_permissions: data.get("file_permissions") || "0600" } : {}),
    });
    list.reload();
  });
  const replace = useSubmit(async (data) => {
    await api("PATCH", `/v1/secrets/${replacing}`, { value: data.get("value") });
    setReplacing(null);
    list.reload();
  });
  return (
    <>
      <p class="muted">Values are write-only: nobody can read them back, through the dashboard or the API. Changing one redeploys ready previews.</p>
      <ErrorNote error={list.error} />
      {!list.items ? (
        <Loading what="secrets" />
      ) : list.items.length === 0 ? (
        <Empty>No secrets.</Empty>
      ) : (
        <div class="table-wrap">
          <table>
            <TableHead columns={["Key", "Scope", "Kind", "Updated"]} actions />
            <tbody>
              {list.items.map((secret) => (
                <tr>
                  <td>
                    <code>{secret.key}</code>
                  </td>
                  <td>{secret.scope}</td>
                  <td>{secret.secret_type === "file" ? `file ${secret.file_path} (${secret.file_permissions})` : "env"}</td>
                  <td>{ago(secret.updated_at)}</td>
                  <td class="actions">
                    {admin && (
                      <>
                        <button type="button" onClick={() => setReplacing(replacing === secret.id ? null : secret.id)}>
                          Replace value
                        </button>
                        <ActionButton label="Delete" danger confirm={`Delete the secret ${secret.key} (${secret.scope})?`} onAction={async () => {
                          await api("DELETE", `/v1/secrets/${secret.id}`);
                          list.reload();
                        }} />
                      </>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {admin && replacing && (
        <form class="inline-form" onSubmit={replace.onSubmit}>
          <h2>New value for {list.items?.find((s) => s.id === replacing)?.key}</h2>
          <Field label="Value">
            <input name="value" type="password" required autocomplete="new-password" />
          </Field>
          <button type="submit" class="primary" disabled={replace.busy}>
            Replace
          </button>
          <button type="button" onClick={() => setReplacing(null)}>
            Cancel
          </button>
          <ErrorNote error={replace.error} />
        </form>
      )}
      {admin && (
        <form class="stack-form" onSubmit={add.onSubmit}>
          <h2>Add a secret</h2>
          <Field label="Kind">
            <select name="secret_type" onChange={(event: Event) => setType((event.target as HTMLSelectElement).value as "env" | "file")}>
              <option value="env" selected={type === "env"}>
                Environment variable
              </option>
              <option value="file" selected={type === "file"}>
                File
              </option>
            </select>
          </Field>
          <Field label="Key" hint="Letters, digits and _, not starting with a digit.">
            <input name="key" required pattern="[A-Za-z_][A-Za-z0-9_]*" maxLength={128} spellcheck={false} autocomplete="off" />
          </Field>
          <Field label="Scope" hint='"global", or a docker compose service name (wins over global).'>
            <input name="scope" value="global" required spellcheck={false} />
          </Field>
          {type === "file" && (
            <>
              <Field label="File path" hint="Relative, inside the repository checkout.">
                <input name="file_path" required placeholder="config/credentials.json" spellcheck={false} />
              </Field>
              <Field label="Permissions">
                <input name="file_permissions" value="0600" pattern="0[0-7]{3}" />
              </Field>
            </>
          )}
          <Field label="Value">
            {type === "file" ? (
              <textarea name="value" required rows={6} spellcheck={false} autocomplete="off" />
            ) : (
              <input name="value" type="password" required autocomplete="new-password" />
            )}
          </Field>
          <ErrorNote error={add.error} />
          <button type="submit" class="primary" disabled={add.busy}>
            Add secret
          </button>
        </form>
      )}
    </>
  );
}
