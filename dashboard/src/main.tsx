import type { Child } from "hono/jsx";
import { render, useEffect, useRef, useState } from "hono/jsx/dom";
import { api, SIGNED_OUT_EVENT, type Invitation, type Me, type Page, type Role } from "./api.ts";
import { ErrorNote, Loading } from "./components.tsx";
import { useResource } from "./hooks.ts";
import { AuditLog } from "./pages/audit.tsx";
import { CloudProviders } from "./pages/cloud-providers.tsx";
import { EnvironmentPage } from "./pages/environment.tsx";
import { TeamEnvironments } from "./pages/environments.tsx";
import { MyInvitations } from "./pages/invitations.tsx";
import { Members } from "./pages/members.tsx";
import { NewProject, ProjectPage, Projects } from "./pages/projects.tsx";
import { SignIn } from "./pages/sign-in.tsx";
import { NewTeam, TeamSettings } from "./pages/teams.tsx";
import { Tokens } from "./pages/tokens.tsx";
import { can } from "./roles.ts";
import { interceptLinks, navigate, useLocation } from "./router.ts";
import "./styles.css";

/** What every team page is given: the team (slug), the caller's role in it, and the current address. */
export interface TeamPageProps {
  team: string;
  role: Role;
  url: URL;
}

type TeamPage = (props: TeamPageProps & { id: string }) => Child;

/** Team pages by address, and the role a page needs to be offered at all (the API refuses the rest anyway). */
const teamPages: { pattern: RegExp; page: TeamPage; section: string; minRole?: Role }[] = [
  { pattern: /^environments$/, page: TeamEnvironments, section: "environments" },
  { pattern: /^environments\/(env_[a-z0-9]+)$/, page: EnvironmentPage, section: "environments" },
  { pattern: /^projects$/, page: Projects, section: "projects" },
  { pattern: /^projects\/new$/, page: NewProject, section: "projects", minRole: "admin" },
  { pattern: /^projects\/(prj_[a-z0-9]+)$/, page: ProjectPage, section: "projects" },
  { pattern: /^cloud-providers$/, page: CloudProviders, section: "cloud-providers" },
  { pattern: /^members$/, page: Members, section: "members" },
  { pattern: /^audit$/, page: AuditLog, section: "audit", minRole: "admin" },
  { pattern: /^settings$/, page: TeamSettings, section: "settings" },
];

const sections: { section: string; label: string; minRole?: Role }[] = [
  { section: "environments", label: "Environments" },
  { section: "projects", label: "Projects" },
  { section: "cloud-providers", label: "Cloud providers" },
  { section: "members", label: "Members" },
  { section: "audit", label: "Audit log", minRole: "admin" },
  { section: "settings", label: "Settings" },
];

function NotFound({ what }: { what: string }) {
  return (
    <section>
      <h1>Not found</h1>
      <p>{what}</p>
      <p>
        <a href="/">Go to your environments</a>
      </p>
    </section>
  );
}

function Header({ me, team, section }: { me: Me; team?: string; section?: string }) {
  const role = me.teams.find((t) => t.slug === team)?.role;
  // Invitations waiting for this user's answer: checked when the app loads and after answering one (that page reloads).
  const waiting = useResource<Page<Invitation>>("/v1/invitations?limit=100").data?.data.length ?? 0;
  const signOut = async () => {
    await api("POST", "/v1/auth/logout").catch(() => undefined);
    location.assign("/sign-in");
  };
  return (
    <header class="top">
      <div class="top-row">
        <a class="brand" href="/">
          Stagely
        </a>
        <label class="team-switcher">
          <span class="visually-hidden">Team</span>
          <select
            onChange={(event: Event) => {
              const value = (event.target as HTMLSelectElement).value;
              navigate(value ? `/t/${value}/${section ?? "environments"}` : "/teams/new");
            }}
          >
            {!team && <option value="">Choose a team</option>}
            {me.teams.map((t) => (
              <option value={t.slug} selected={t.slug === team}>
                {t.slug}
              </option>
            ))}
            <option value="">+ New team…</option>
          </select>
        </label>
        <div class="user">
          {(waiting > 0 || section === "invitations") && (
            <a href="/invitations" aria-current={section === "invitations" ? "page" : undefined}>
              Invitations{waiting > 0 ? ` (${waiting})` : ""}
            </a>
          )}
          <a href="/tokens" aria-current={section === "tokens" ? "page" : undefined}>
            API tokens
          </a>
          <span class="muted who" title={me.user.email}>
            {me.user.github_login ?? me.user.email}
          </span>
          <button type="button" class="link-button" onClick={signOut}>
            Sign out
          </button>
        </div>
      </div>
      {team && role && (
        <nav aria-label="Team">
          {sections
            .filter((s) => !s.minRole || can(role, s.minRole))
            .map((s) => (
              <a href={`/t/${team}/${s.section}`} aria-current={s.section === section ? "page" : undefined}>
                {s.label}
              </a>
            ))}
        </nav>
      )}
    </header>
  );
}

function Shell({ me, url }: { me: Me; url: URL }) {
  const path = url.pathname.replace(/\/+$/, "") || "/";
  const firstTeam = me.teams[0]?.slug;
  // GitHub's install page sends the browser back to /?github_installation=…&team=… (the installation callback).
  const installedFor = url.searchParams.get("github_installation") ? me.teams.find((t) => t.slug === url.searchParams.get("team"))?.slug : undefined;
  useEffect(() => {
    if (path === "/" && installedFor) navigate(`/t/${installedFor}/projects/new?github_installation=${encodeURIComponent(url.searchParams.get("github_installation")!)}`, { replace: true });
    else if (path === "/" || path === "/sign-in") navigate(firstTeam ? `/t/${firstTeam}/environments` : "/teams/new", { replace: true });
    else if (/^\/t\/[^/]+$/.test(path)) navigate(`${path}/environments`, { replace: true });
  }, [path, firstTeam, installedFor]);
  // After an in-app navigation, keyboard and screen reader users continue at the new page's content.
  const shownPath = useRef(path);
  useEffect(() => {
    if (shownPath.current !== path) document.getElementById("main")?.focus({ preventScroll: true });
    shownPath.current = path;
  }, [path]);

  let content: Child = null;
  let team: string | undefined;
  let section: string | undefined;
  const teamMatch = /^\/t\/([a-z0-9_-]+)\/(.+)$/.exec(path);
  if (path === "/tokens") {
    section = "tokens";
    content = <Tokens />;
  } else if (path === "/invitations") {
    section = "invitations";
    content = <MyInvitations />;
  } else if (path === "/teams/new") {
    content = <NewTeam />;
  } else if (teamMatch) {
    team = teamMatch[1]!;
    const membership = me.teams.find((t) => t.slug === team);
    const route = teamPages.map((r) => ({ r, m: r.pattern.exec(teamMatch[2]!) })).find((x) => x.m);
    section = route?.r.section;
    if (!membership) content = <NotFound what={`There is no team "${team}", or you are not a member of it.`} />;
    else if (!route || (route.r.minRole && !can(membership.role, route.r.minRole))) content = <NotFound what="There is no such page in this team." />;
    else {
      const Page = route.r.page;
      content = <Page team={team} role={membership.role} url={url} id={route.m![1] ?? ""} />;
    }
  } else if (path !== "/" && path !== "/sign-in" && !/^\/t\/[^/]+$/.test(path)) {
    content = <NotFound what="There is no such page." />;
  }
  return (
    <>
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <Header me={me} team={team} section={section} />
      <main id="main" tabindex={-1}>
        {content}
      </main>
    </>
  );
}

function App() {
  const url = useLocation();
  const me = useResource<Me>("/v1/me");
  const [signedOut, setSignedOut] = useState(false);
  useEffect(() => {
    const onSignedOut = () => setSignedOut(true);
    window.addEventListener(SIGNED_OUT_EVENT, onSignedOut);
    return () => window.removeEventListener(SIGNED_OUT_EVENT, onSignedOut);
  }, []);
  if (signedOut || me.error?.status === 401) {
    const back = url.pathname === "/sign-in" ? "/" : url.pathname + url.search;
    return <SignIn returnTo={back} />;
  }
  if (me.error) return <ErrorNote error={me.error} />;
  if (!me.data) return <Loading what="your account" />;
  return <Shell me={me.data} url={url} />;
}

interceptLinks();
render(<App />, document.getElementById("app")!);
