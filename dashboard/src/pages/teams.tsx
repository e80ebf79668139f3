import { api, type Installation, type Page, type Team } from "../api.ts";
import { ActionButton, Empty, ErrorNote, Field, Loading, PageHeader, useSubmit } from "../components.tsx";
import { ago } from "../format.ts";
import { useResource } from "../hooks.ts";
import type { TeamPageProps } from "../main.tsx";
import { can } from "../roles.ts";
import { InstallAppLink } from "./projects.tsx";

export function NewTeam() {
  const create = useSubmit(async (data) => {
    const team = await api<Team>("POST", "/v1/teams", { name: data.get("name"), ...(data.get("slug") ? { slug: data.get("slug") } : {}) });
    // The new membership is part of the session's view of the user: load the app again.
    location.assign(`/t/${team.slug}/environments`);
  });
  return (
    <section>
      <PageHeader title="New team" />
      <form class="stack-form" onSubmit={create.onSubmit}>
        <Field label="Name">
          <input name="name" required maxLength={100} autocomplete="organization" />
        </Field>
        <Field label="Slug" hint="Lowercase letters, digits and dashes; defaults to the name.">
          <input name="slug" pattern="[a-z0-9][a-z0-9-]*[a-z0-9]" maxLength={63} />
        </Field>
        <ErrorNote error={create.error} />
        <button type="submit" class="primary" disabled={create.busy}>
          Create team
        </button>
      </form>
    </section>
  );
}

export function TeamSettings({ team, role }: TeamPageProps) {
  const current = useResource<Team>(`/v1/teams/${team}`);
  const admin = can(role, "admin");
  const save = useSubmit(
    async (data) => {
      const body = {
        name: data.get("name"),
        billing_email: data.get("billing_email") || null,
        max_concurrent_environments: Number(data.get("max_concurrent_environments")),
        max_concurrent_builds: Number(data.get("max_concurrent_builds")),
      };
      await api("PATCH", `/v1/teams/${team}`, body);
      current.reload();
    },
    { keep: true },
  );
  const t = current.data;
  return (
    <section>
      <PageHeader title="Team settings" />
      <ErrorNote error={current.error} />
      {!t ? (
        <Loading what="the team" />
      ) : (
        <form class="stack-form" onSubmit={save.onSubmit}>
          <fieldset disabled={!admin}>
            {!admin && <legend class="muted">Only admins and owners change team settings.</legend>}
            <Field label="Name">
              <input name="name" required maxLength={100} value={t.name} />
            </Field>
            <Field label="Billing email">
              <input name="billing_email" type="email" value={t.billing_email ?? ""} />
            </Field>
            <Field label="Live preview environments at once" hint="More wait in line; none fails.">
              <input name="max_concurrent_environments" type="number" min={1} max={1000} required value={String(t.max_concurrent_environments)} />
            </Field>
            <Field label="Builds at once">
              <input name="max_concurrent_builds" type="number" min={1} max={1000} required value={String(t.max_concurrent_builds)} />
            </Field>
          </fieldset>
          <ErrorNote error={save.error} />
          {admin && (
            <button type="submit" class="primary" disabled={save.busy}>
              Save
            </button>
          )}
        </form>
      )}
      <GitHubInstallations team={team} admin={admin} />
      {can(role, "owner") && (
        <div class="danger-zone">
          <h2>Delete the team</h2>
          <p>The team must have no live preview environments. Its projects, secrets and cloud providers go with it.</p>
          <ActionButton
            label="Delete team"
            danger
            confirm={`Delete the team ${team}? This cannot be undone.`}
            onAction={async () => {
              await api("DELETE", `/v1/teams/${team}`);
              location.assign("/");
            }}
          />
        </div>
      )}
    </section>
  );
}

/** The GitHub accounts the Stagely App is installed on for this team, and the repositories each lets projects build. */
function GitHubInstallations({ team, admin }: { team: string; admin: boolean }) {
  const list = useResource<Page<Installation>>(`/v1/teams/${team}/github/installations?limit=100`);
  return (
    <>
      <h2>GitHub App installations</h2>
      <ErrorNote error={list.error} />
      {!list.data ? (
        <Loading what="installations" />
      ) : list.data.data.length === 0 ? (
        <Empty>The Stagely GitHub App is not installed for this team yet: projects need it to build a repository.</Empty>
      ) : (
        <ul class="cards">
          {list.data.data.map((installation) => (
            <li class="card" data-installation={installation.id}>
              <h3>
                {installation.account_login}
                {installation.suspended_at && <span class="badge badge-bad">suspended</span>}
              </h3>
              <p class="small">
                {installation.repository_selection === "all" ? "All repositories" : "Selected repositories"}:{" "}
                {installation.repositories.map((r) => r.full_name).join(", ") || "none"}
              </p>
              <p class="muted small">Connected {ago(installation.created_at)}</p>
              {admin && (
                <ActionButton
                  label="Disconnect"
                  danger
                  confirm={`Disconnect the installation on ${installation.account_login}? Its repositories' projects stop getting previews.`}
                  onAction={async () => {
                    await api("DELETE", `/v1/teams/${team}/github/installations/${installation.id}`);
                    list.reload();
                  }}
                />
              )}
            </li>
          ))}
        </ul>
      )}
      {admin && (
        <p>
          <InstallAppLink team={team} label="Install the GitHub App on an account" />
        </p>
      )}
    </>
  );
}
