import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, gzipSync } from "node:zlib";
import { eq } from "drizzle-orm";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSimulatedAgent } from "../../scripts/agent-sim/agent.ts";
import { startStack, type Stack } from "../../scripts/lib/stack.ts";
import { defaultTestBackend } from "../../scripts/local-db/index.ts";
import { mintSignInLink } from "../../src/auth/sign-in-links.ts";
import { teamMembers, teams, users } from "../../src/db/schema.ts";
import { hmacSha256Hex } from "../../src/lib/crypto.ts";
import { newId } from "../../src/lib/ids.ts";
import { GITHUB_WEBHOOK_SECRET } from "../../scripts/local-github/github.ts";
import { pullRequestPayload } from "../github-payloads.ts";
import { installApp } from "../installations.ts";
import { ARTIFACTS, browserAvailable, launchChromium, screenshot } from "./browser.ts";

// The dashboard in a real browser (Debian's Chromium through playwright-core) against `wrangler dev` with the local
// database, the fake GitHub and the local cloud with simulated agents. The tests run in order and share one story:
// the owner signs in with GitHub, sets up a team, a cloud, a project and a secret, opens a pull request and watches
// its preview build live; then every role looks at what it is offered; then the preview is deleted.

const REPO = "acme/shop";
const COMMIT = "5".repeat(40);
const PR = 7;
const PR_TITLE = "Add the cart";
const SECRET_VALUE = `pw-${randomUUID()}`;
const STAGELY_YAML = "version: 2\nbuilds:\n  web:\n    context: .\n    platform: linux/amd64\npreview:\n  size: small\n";
const COMPOSE = "services:\n  web: {image: web, ports: [\"80:3000\"]}\n";

const available = browserAvailable();
let stack: Stack;
let browser: Browser;
let owner: BrowserContext;
let page: Page;
const ids = { team: "", installation: 0, project: "", environment: "" };

/** Every response body the owner's browser received, to prove the secret's value never came back. */
const received: Promise<string>[] = [];

async function fake(path: string, body: unknown) {
  const response = await fetch(`${stack.githubUrl}${path}`, { method: "POST", body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`fake GitHub ${path}: ${response.status} ${await response.text()}`);
  return response.status === 204 ? undefined : ((await response.json()) as { id: number });
}

async function newPage(context: BrowserContext): Promise<Page> {
  const opened = await context.newPage();
  opened.on("dialog", (dialog) => void dialog.accept());
  return opened;
}

/** A browser context signed in as a new user with `role` in the team, through a one-time sign-in link. */
async function signedInAs(role: "viewer" | "member" | "admin"): Promise<{ context: BrowserContext; page: Page }> {
  const id = newId("user");
  await stack.db.batch([
    stack.db.insert(users).values({ id, email: `${role}-${id}@example.test`, name: `The ${role}` }),
    stack.db.insert(teamMembers).values({ teamId: ids.team, userId: id, role }),
  ]);
  const context = await browser.newContext();
  const rolePage = await newPage(context);
  await rolePage.goto(await mintSignInLink(stack.db, stack.apiUrl, id));
  await rolePage.waitForURL("**/t/acme/environments");
  return { context, page: rolePage };
}

/** Polls until the page shows what is expected (the machine running these tests may be busy). */
const eventually = <T>(check: () => Promise<T>, timeout = 10_000) => expect.poll(check, { timeout, interval: 100 });
const buttons = (on: Page, name: string) => on.getByRole("button", { name, exact: true });
const navLink = (on: Page, name: string) => on.getByRole("navigation", { name: "Team" }).getByRole("link", { name, exact: true });

describe.skipIf(!available)("the dashboard in a browser", () => {
  beforeAll(async () => {
    stack = await startStack({
      backend: defaultTestBackend(),
      log: () => {},
      vars: { GITHUB_APP_SLUG: "stagely-test" },
      // Builds slow enough (about 10 s of log) that the page sees lines arrive.
      cloud: { startAgent: (agent) => startSimulatedAgent({ coreUrl: agent.core_url, token: agent.token, agentId: agent.agent_id, speed: 0.25, linesPerBuild: 120, log: () => {} }) },
    });
    browser = await launchChromium();
    owner = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await newPage(owner);
    page.on("response", (response) => {
      if (!response.headers()["content-type"]?.includes("event-stream")) received.push(response.text().catch(() => ""));
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it("signs in with GitHub and creates a team", async () => {
    await fake("/_fake/oauth/approver", {
      user: { id: 424242, login: "octo-owner", name: "Octo Owner", avatar_url: null },
      emails: [{ email: "owner@acme.test", primary: true, verified: true, visibility: "private" }],
    });
    await page.goto(`${stack.apiUrl}/`);
    await eventually(() => page.getByRole("link", { name: "Sign in with GitHub" }).count()).toBe(1);
    await screenshot(page, "sign-in");
    await page.getByRole("link", { name: "Sign in with GitHub" }).click();
    // Back from GitHub with a session cookie; a new user has no team yet.
    await page.waitForURL("**/teams/new");
    const cookies = await owner.cookies();
    expect(cookies.find((c) => c.name === "stagely_session")).toMatchObject({ httpOnly: true });
    await page.locator('input[name="name"]').fill("Acme");
    await page.locator('input[name="slug"]').fill("acme");
    await buttons(page, "Create team").click();
    await page.waitForURL("**/t/acme/environments");
    await eventually(() => page.getByText("No live preview environments").count()).toBe(1);
    ids.team = (await stack.db.select().from(teams).where(eq(teams.slug, "acme")))[0]!.id;

    // No installation yet: a new project starts with GitHub's install page, through a link made for this team.
    await navLink(page, "Projects").click();
    await page.getByRole("link", { name: "New project" }).click();
    const install = page.getByRole("link", { name: "Install the GitHub App" });
    await eventually(() => install.count()).toBe(1);
    expect(await install.getAttribute("href")).toMatch(new RegExp(`^${stack.githubUrl}/apps/stagely-test/installations/new\\?state=.+`));
    await screenshot(page, "new-project-install-app");
    // The team installs the GitHub App on its repository (the install flow itself is tested in src/installations);
    // GitHub's callback then sends the browser back to the dashboard, which continues with the new project.
    ids.installation = (await installApp(stack.db, stack.githubUrl!, ids.team, [REPO, "acme/docs"])).id;
    await page.goto(`${stack.apiUrl}/?github_installation=${ids.installation}&team=acme`);
    await page.waitForURL((url) => url.pathname === "/t/acme/projects/new" && url.searchParams.get("github_installation") === String(ids.installation));
    await eventually(() => page.getByText("The GitHub App is installed").count()).toBe(1);
    await eventually(() => page.locator('select[name="repo_url"] option').allTextContents()).toEqual(["Choose a repository", "acme/docs", REPO]);
  }, 60_000);

  it("adds and validates a cloud provider, and creates a project on it", async () => {
    await navLink(page, "Cloud providers").click();
    await page.locator('select[name="provider_type"]').selectOption("local");
    await eventually(() => page.getByText("Simulated VMs").count()).toBe(1);
    await page.locator('input[name="name"]').fill("local");
    await page.locator('input[name="endpoint"]').fill(stack.localCloudUrl!);
    await buttons(page, "Add cloud provider").click();
    await eventually(() => page.getByRole("heading", { name: "local" }).count()).toBe(1);
    await buttons(page, "Validate").click();
    await eventually(() => page.getByText("Credentials valid").count()).toBe(1);
    await screenshot(page, "cloud-providers");

    await navLink(page, "Projects").click();
    await page.getByRole("link", { name: "New project" }).click();
    await page.locator('input[name="name"]').fill("Shop");
    await page.locator('select[name="repo_url"]').selectOption(REPO);
    await page.locator('select[name="cloud_provider_id"]').selectOption({ label: "local (local, local)" });
    expect(await page.locator('select[name="preview_access"]').inputValue()).toBe("team");
    await screenshot(page, "new-project");
    await buttons(page, "Create project").click();
    await page.waitForURL(/\/t\/acme\/projects\/prj_/);
    ids.project = /prj_[a-z0-9]+/.exec(page.url())![0];
    await eventually(() => page.getByRole("heading", { name: "Shop" }).count()).toBe(1);
    await eventually(() => page.getByText("previews team only").count()).toBe(1);

    // Settings: previews become public, and back (the API has both; the page shows what it answered).
    await page.getByRole("navigation", { name: "Project" }).getByRole("link", { name: "Settings" }).click();
    await page.locator('select[name="preview_access"]').selectOption("public");
    await buttons(page, "Save settings").click();
    await eventually(() => page.getByText("previews public").count()).toBe(1);
    await eventually(() => page.getByRole("status").filter({ hasText: /^Saved at/ }).count()).toBe(1);
    await screenshot(page, "project-settings");
    await page.locator('select[name="preview_access"]').selectOption("team");
    await buttons(page, "Save settings").click();
    await eventually(() => page.getByText("previews team only").count()).toBe(1);
  }, 60_000);

  it("sets a secret whose value never reaches the page again, not in the DOM nor in any response", async () => {
    await page.getByRole("link", { name: "Secrets" }).click();
    await page.locator('input[name="key"]').fill("DATABASE_PASSWORD");
    await page.locator('input[name="value"]').fill(SECRET_VALUE);
    await buttons(page, "Add secret").click();
    await eventually(() => page.getByRole("cell", { name: "DATABASE_PASSWORD" }).count()).toBe(1);
    // Replace it (write-only too), then look everywhere for the value.
    await buttons(page, "Replace value").click();
    await page.locator('form input[name="value"][type="password"]').first().fill(`${SECRET_VALUE}-2`);
    await buttons(page, "Replace").click();
    await eventually(() => buttons(page, "Replace").count()).toBe(0);
    await page.reload();
    await eventually(() => page.getByRole("cell", { name: "DATABASE_PASSWORD" }).count()).toBe(1);
    await screenshot(page, "project-secrets");

    const dom = await page.content();
    const fieldValues = (await page.evaluate(`[...document.querySelectorAll("input, textarea")].map((el) => el.value).join("\\n")`)) as string;
    expect(dom).not.toContain(SECRET_VALUE);
    expect(fieldValues).not.toContain(SECRET_VALUE);
    const bodies = await Promise.all(received);
    expect(bodies.length).toBeGreaterThan(10);
    for (const body of bodies) expect(body).not.toContain(SECRET_VALUE);
  }, 60_000);

  it("shows a pull request's preview building with its log lines arriving live, until it is ready", async () => {
    await fake(`/_fake/repos/${REPO}/files`, { ref: COMMIT, path: "stagely.yaml", content: STAGELY_YAML });
    await fake(`/_fake/repos/${REPO}/files`, { ref: COMMIT, path: "docker-compose.yml", content: COMPOSE });
    const body = JSON.stringify(pullRequestPayload({ action: "opened", repo: REPO, number: PR, sha: COMMIT, ref: "feature/cart", installationId: ids.installation, title: PR_TITLE }));
    const webhook = await fetch(`${stack.apiUrl}/v1/webhooks/github`, {
      method: "POST",
      body,
      headers: {
        "Content-Type": "application/json",
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": randomUUID(),
        "X-Hub-Signature-256": `sha256=${await hmacSha256Hex(GITHUB_WEBHOOK_SECRET, body)}`,
      },
    });
    expect(webhook.status).toBe(202);

    await navLink(page, "Environments").click();
    const link = page.getByRole("link", { name: `PR #${PR}` });
    await eventually(() => link.count(), 20_000).toBe(1);
    expect(await page.locator("tr", { has: link }).locator(".pr-title").textContent()).toBe(PR_TITLE);
    await link.click();
    await page.waitForURL(/\/environments\/env_/);
    await eventually(() => page.getByRole("heading", { name: `PR #${PR}: ${PR_TITLE}` }).count()).toBe(1);
    ids.environment = /env_[a-z0-9]+/.exec(page.url())![0];

    const lineCount = async () => Number((await page.getByTestId("log-line-count").textContent().catch(() => "0")) ?? 0);
    await eventually(lineCount, 30_000).toBeGreaterThan(0);
    // From here on nothing on the page may move while lines stream in.
    await page.evaluate(`
      window.shift = 0;
      new PerformanceObserver((list) => {
        // Counted while the log is live; the deploy's result appearing once the builds end is not a log shift.
        if (document.querySelector(".log-status")?.getAttribute("data-stream") !== "live") return;
        for (const entry of list.getEntries()) if (!entry.hadRecentInput) window.shift += entry.value;
      }).observe({ type: "layout-shift" });`);
    const seen = await lineCount();
    await eventually(lineCount, 10_000).toBeGreaterThan(seen);
    expect(await page.locator(".log-status").getAttribute("data-stream")).toBe("live");
    await screenshot(page, "environment-building");

    await eventually(() => page.locator(".facts .badge").textContent(), 60_000).toBe("ready");
    await eventually(() => page.locator(".log-status").getAttribute("data-stream")).toBe("ended");
    const shift = (await page.evaluate("window.shift")) as number;
    console.log(`[dashboard] cumulative layout shift while the log streamed: ${shift.toFixed(4)}`);
    expect(shift).toBeLessThan(0.01);
    expect(await lineCount()).toBe(120);
    await eventually(() => page.getByRole("link", { name: /^https?:\/\/[a-z0-9]{16}\./ }).count()).toBe(1);
    // The deploy's result per service, as the preview agent reported it.
    await eventually(() => page.locator('[data-service="web"] .badge').textContent()).toBe("healthy");

    await page.getByRole("searchbox", { name: "Search the log" }).fill("npm warn");
    await eventually(() => page.locator(".log-count").textContent()).toMatch(/^1 of \d+$/);
    expect(await page.locator(".log-line.log-current").textContent()).toContain("npm warn");
    await screenshot(page, "environment-ready");

    await navLink(page, "Environments").click();
    await eventually(() => page.locator(`tr[data-environment="${ids.environment}"] .badge`).textContent()).toBe("ready");
    expect(await page.locator("th").allTextContents()).toEqual(["Pull request", "Project", "Branch · commit", "Status", "Preview", "Age", "Last request", "Machine"]);
    await screenshot(page, "environments");
  }, 120_000);

  it("creates a share link shown once, and revokes it", async () => {
    await page.goto(`${stack.apiUrl}/t/acme/environments/${ids.environment}`);
    await eventually(() => page.getByText("No share links.").count()).toBe(1);
    await page.locator('input[name="name"]').fill("QA review");
    await page.locator('select[name="expires_in_hours"]').selectOption("24");
    await buttons(page, "Create share link").click();
    const link = (await page.getByTestId("new-share-link").textContent())!;
    const token = new URL(link).searchParams.get("stagely_share")!;
    expect(token).toMatch(/^stg_shr_/);
    const row = page.locator("tr", { hasText: "QA review" });
    await eventually(() => row.locator(".badge").textContent()).toBe("active");
    await screenshot(page, "environment-share-link");
    await buttons(page, "Done").click();
    expect(await page.content()).not.toContain(token);
    // Shown once: after a reload only the hint is left.
    await page.reload();
    await eventually(() => row.count()).toBe(1);
    expect(await page.content()).not.toContain(token);
    await row.getByRole("button", { name: "Revoke" }).click();
    await eventually(() => row.locator(".badge").textContent()).toBe("revoked");
    expect(await row.getByRole("button", { name: "Revoke" }).count()).toBe(0);
  }, 60_000);

  it("offers each role only what it may do, and the API refuses the rest anyway", async () => {
    const viewer = await signedInAs("viewer");
    const v = viewer.page;
    expect(await v.getByRole("link", { name: "Audit log" }).count()).toBe(0);
    await v.goto(`${stack.apiUrl}/t/acme/environments/${ids.environment}`);
    await eventually(() => v.getByRole("heading", { name: `PR #${PR}` }).count()).toBe(1);
    await eventually(() => v.locator("tr", { hasText: "QA review" }).count()).toBe(1);
    for (const name of ["Rebuild", "Delete", "Cancel run", "Create share link", "Revoke"]) expect(await buttons(v, name).count(), name).toBe(0);
    await v.goto(`${stack.apiUrl}/t/acme/projects/${ids.project}?tab=secrets`);
    await eventually(() => v.getByRole("cell", { name: "DATABASE_PASSWORD" }).count()).toBe(1);
    for (const name of ["Add secret", "Replace value", "Delete"]) expect(await buttons(v, name).count(), name).toBe(0);
    await v.goto(`${stack.apiUrl}/t/acme/projects`);
    await eventually(() => v.getByRole("link", { name: "Shop" }).count()).toBe(1);
    expect(await v.getByRole("link", { name: "New project" }).count()).toBe(0);
    await v.goto(`${stack.apiUrl}/t/acme/cloud-providers`);
    await eventually(() => v.getByRole("heading", { name: "local" }).count()).toBe(1);
    for (const name of ["Validate", "Delete", "Add cloud provider"]) expect(await buttons(v, name).count(), name).toBe(0);
    await v.goto(`${stack.apiUrl}/t/acme/members`);
    await eventually(() => v.getByText("owner@acme.test").count()).toBe(1);
    expect(await buttons(v, "Invite").count()).toBe(0);
    expect(await v.getByRole("heading", { name: "Invitations" }).count()).toBe(0);
    expect(await v.getByRole("combobox", { name: /^Role of/ }).count()).toBe(0);
    expect(await buttons(v, "Remove").count()).toBe(0);
    await v.goto(`${stack.apiUrl}/t/acme/settings`);
    await eventually(() => v.locator('input[name="name"]').count()).toBe(1);
    expect(await v.locator('input[name="name"]').isDisabled()).toBe(true);
    expect(await buttons(v, "Save").count()).toBe(0);
    await eventually(() => v.locator(`[data-installation="${ids.installation}"]`).count()).toBe(1);
    expect(await buttons(v, "Disconnect").count()).toBe(0);
    expect(await v.getByRole("link", { name: /Install the GitHub App/ }).count()).toBe(0);
    await v.goto(`${stack.apiUrl}/t/acme/audit`);
    await eventually(() => v.getByRole("heading", { name: "Not found" }).count()).toBe(1);
    await screenshot(v, "viewer-environment-denied");
    // The page's own session, with a valid CSRF token: the API still says no.
    const refused = await v.evaluate(`(async () => {
      const csrf = document.cookie.split("; ").find((c) => c.startsWith("stagely_csrf=")).slice("stagely_csrf=".length);
      const response = await fetch("/v1/projects/${ids.project}/secrets", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({ key: "SNEAKY", value: "nope-nope-nope" }),
      });
      return response.status;
    })()`);
    expect(refused).toBe(403);
    await viewer.context.close();

    const member = await signedInAs("member");
    const m = member.page;
    expect(await m.getByRole("link", { name: "Audit log" }).count()).toBe(0);
    await m.goto(`${stack.apiUrl}/t/acme/environments/${ids.environment}`);
    await eventually(() => buttons(m, "Rebuild").count()).toBe(1);
    expect(await buttons(m, "Delete").count()).toBe(1);
    await eventually(() => buttons(m, "Create share link").count()).toBe(1);
    await m.goto(`${stack.apiUrl}/t/acme/projects/${ids.project}?tab=secrets`);
    await eventually(() => m.getByRole("cell", { name: "DATABASE_PASSWORD" }).count()).toBe(1);
    expect(await buttons(m, "Add secret").count()).toBe(0);
    await m.goto(`${stack.apiUrl}/t/acme/projects`);
    await eventually(() => m.getByRole("link", { name: "Shop" }).count()).toBe(1);
    expect(await m.getByRole("link", { name: "New project" }).count()).toBe(0);
    await member.context.close();

    const admin = await signedInAs("admin");
    const a = admin.page;
    await eventually(() => a.getByRole("link", { name: "Audit log" }).count()).toBe(1);
    await a.goto(`${stack.apiUrl}/t/acme/projects/${ids.project}?tab=secrets`);
    await eventually(() => buttons(a, "Add secret").count()).toBe(1);
    await eventually(() => buttons(a, "Replace value").count()).toBe(1);
    await a.goto(`${stack.apiUrl}/t/acme/members`);
    await eventually(() => buttons(a, "Invite").count()).toBe(1);
    // Admins hand out roles up to admin, and never touch owners.
    const roleOfOwner = a.getByRole("combobox", { name: "Role of owner@acme.test" });
    expect(await roleOfOwner.count()).toBe(0);
    await a.goto(`${stack.apiUrl}/t/acme/settings`);
    await eventually(() => buttons(a, "Save").count()).toBe(1);
    expect(await buttons(a, "Delete team").count()).toBe(0);
    await admin.context.close();

    await page.goto(`${stack.apiUrl}/t/acme/settings`);
    await eventually(() => buttons(page, "Delete team").count()).toBe(1);
    await eventually(() => buttons(page, "Disconnect").count()).toBe(1);
    await screenshot(page, "team-settings");
    await page.goto(`${stack.apiUrl}/t/acme/members`);
    await eventually(() => page.getByRole("combobox", { name: /^Role of viewer-/ }).count()).toBe(1);
    await screenshot(page, "members");
  }, 120_000);

  it("invites by GitHub login and by email, revokes an invitation, and the invitee accepts the other", async () => {
    await page.goto(`${stack.apiUrl}/t/acme/members`);
    await eventually(() => page.getByText("No invitations yet.").count()).toBe(1);
    const invite = async (who: string, role: string) => {
      await page.locator('input[name="who"]').fill(who);
      await page.getByRole("form", { name: "Invite someone" }).locator('select[name="role"]').selectOption(role);
      await buttons(page, "Invite").click();
    };
    await invite("octo-invitee", "member");
    const forLogin = page.locator("tr", { hasText: "@octo-invitee" });
    await eventually(() => forLogin.locator(".badge").textContent()).toBe("pending");
    await invite("nobody@elsewhere.test", "viewer");
    const forEmail = page.locator("tr", { hasText: "nobody@elsewhere.test" });
    await eventually(() => forEmail.locator(".badge").textContent()).toBe("pending");
    await forEmail.getByRole("button", { name: "Revoke" }).click();
    await eventually(() => forEmail.locator(".badge").textContent()).toBe("revoked");
    await screenshot(page, "members-invitations");

    // The invitee signs in for the first time: no team yet, one invitation waiting.
    const id = newId("user");
    await stack.db.insert(users).values({ id, email: "invitee@example.test", name: "The invitee", githubLogin: "octo-invitee" });
    const context = await browser.newContext();
    const invitee = await newPage(context);
    await invitee.goto(await mintSignInLink(stack.db, stack.apiUrl, id));
    await invitee.waitForURL("**/teams/new");
    await invitee.getByRole("link", { name: "Invitations (1)" }).click();
    await invitee.waitForURL("**/invitations");
    await eventually(() => invitee.getByRole("heading", { name: "Acme" }).count()).toBe(1);
    expect(await invitee.getByText("invites you as member").count()).toBe(1);
    await screenshot(invitee, "invitations");
    await buttons(invitee, "Accept").click();
    await invitee.waitForURL("**/t/acme/environments");
    await eventually(() => invitee.getByRole("link", { name: `PR #${PR}` }).count()).toBe(1);
    expect(await invitee.getByRole("link", { name: /^Invitations/ }).count()).toBe(0);
    await context.close();

    await page.reload();
    await eventually(() => forLogin.locator(".badge").textContent()).toBe("accepted");
    await eventually(() => page.getByText("invitee@example.test").count()).toBe(1);
  }, 120_000);

  it("shows the audit log with filters, and manages API tokens (each shown once)", async () => {
    await page.goto(`${stack.apiUrl}/t/acme/audit`);
    await eventually(() => page.getByText("secret.created").count()).toBe(1);
    await page.locator('input[name="action"]').fill("secret.updated");
    await buttons(page, "Filter").click();
    await page.waitForURL(/action=secret\.updated/);
    await eventually(() => page.locator("tbody tr").count()).toBe(1);
    expect(await page.locator("tbody").textContent()).toContain("secret.updated");
    await screenshot(page, "audit-log");

    await page.getByRole("link", { name: "API tokens" }).click();
    await page.locator('input[name="name"]').fill("ci");
    await buttons(page, "Create token").click();
    const token = (await page.getByTestId("new-token").textContent())!;
    expect(token).toMatch(/^stg_pat_[0-9A-Za-z]{32}$/);
    const me = await fetch(`${stack.apiUrl}/v1/me`, { headers: { Authorization: `Bearer ${token}` } });
    expect(me.status).toBe(200);
    await buttons(page, "Done").click();
    expect(await page.content()).not.toContain(token);
    await eventually(() => page.getByRole("cell", { name: "ci", exact: true }).count()).toBe(1);
    await screenshot(page, "tokens");
    await buttons(page, "Revoke").click();
    await eventually(() => page.getByText("No API tokens yet.").count()).toBe(1);
    expect((await fetch(`${stack.apiUrl}/v1/me`, { headers: { Authorization: `Bearer ${token}` } })).status).toBe(401);
  }, 60_000);

  it("works at 375 px wide and by keyboard, with a visible focus", async () => {
    const phone = await browser.newContext({ viewport: { width: 375, height: 812 }, storageState: await owner.storageState() });
    const small = await newPage(phone);
    const pages = {
      environments: "/t/acme/environments",
      environment: `/t/acme/environments/${ids.environment}`,
      secrets: `/t/acme/projects/${ids.project}?tab=secrets`,
      members: "/t/acme/members",
      "team-settings": "/t/acme/settings",
      "project-settings": `/t/acme/projects/${ids.project}?tab=settings`,
      "new-project": "/t/acme/projects/new",
      "cloud-providers": "/t/acme/cloud-providers",
    };
    for (const [name, path] of Object.entries(pages)) {
      await small.goto(`${stack.apiUrl}${path}`);
      await eventually(() => small.locator("main h1").count()).toBe(1);
      await small.waitForLoadState("networkidle");
      const width = (await small.evaluate("document.documentElement.scrollWidth")) as number;
      const overflowing = await small.evaluate(`[...document.querySelectorAll("body *")].filter((el) => el.getBoundingClientRect().right > 376 && !el.closest(".table-wrap, nav")).slice(0, 5).map((el) => el.tagName + "." + el.className)`);
      expect(width, `${path} is ${width} px wide; too wide: ${JSON.stringify(overflowing)}`).toBeLessThanOrEqual(375);
      await screenshot(small, `375px-${name}`);
    }
    await phone.close();

    await page.goto(`${stack.apiUrl}/t/acme/environments`);
    await eventually(() => page.locator("main h1").count()).toBe(1);
    await page.keyboard.press("Tab");
    const skip = (await page.evaluate("({ text: document.activeElement.textContent, left: document.activeElement.getBoundingClientRect().left })")) as { text: string; left: number };
    expect(skip).toEqual({ text: "Skip to content", left: expect.any(Number) });
    expect(skip.left).toBeGreaterThanOrEqual(0);
    await page.keyboard.press("Tab");
    const focus = await page.evaluate(`(() => {
      const style = getComputedStyle(document.activeElement);
      return { text: document.activeElement.textContent, outline: style.outlineStyle + " " + style.outlineWidth };
    })()`);
    expect(focus).toEqual({ text: "Stagely", outline: "solid 3px" });
    // Through the header to the team navigation, then follow a link with Enter.
    for (let i = 0; i < 12 && (await page.evaluate("document.activeElement.textContent")) !== "Projects"; i++) await page.keyboard.press("Tab");
    await page.keyboard.press("Enter");
    await page.waitForURL("**/t/acme/projects");
  }, 60_000);

  it("loads the landing page with well under 100 KB of compressed JavaScript and CSS", async () => {
    const context = await browser.newContext({ storageState: await owner.storageState() });
    const landing = await context.newPage();
    const assets: Promise<{ url: string; raw: number; gzip: number; brotli: number }>[] = [];
    landing.on("response", (response) => {
      const type = response.request().resourceType();
      if (type !== "script" && type !== "stylesheet") return;
      assets.push(
        response.body().then((body) => ({ url: new URL(response.url()).pathname, raw: body.length, gzip: gzipSync(body, { level: 9 }).length, brotli: brotliCompressSync(body).length })),
      );
    });
    await landing.goto(`${stack.apiUrl}/`);
    await landing.waitForURL("**/t/acme/environments");
    await landing.waitForLoadState("networkidle");
    const loaded = await Promise.all(assets);
    const total = (key: "raw" | "gzip" | "brotli") => loaded.reduce((sum, a) => sum + a[key], 0);
    const report = { assets: loaded, raw_bytes: total("raw"), gzip_bytes: total("gzip"), brotli_bytes: total("brotli"), budget_bytes: 100 * 1024 };
    writeFileSync(join(ARTIFACTS, "landing-page-size.json"), `${JSON.stringify(report, null, 2)}\n`);
    console.log(`[dashboard] landing page JS+CSS: ${report.raw_bytes} B raw, ${report.gzip_bytes} B gzip, ${report.brotli_bytes} B brotli (budget 102400 B compressed)`);
    expect(loaded.map((a) => a.url.split("-")[0])).toEqual(expect.arrayContaining(["/ui/app"]));
    expect(report.gzip_bytes).toBeLessThan(report.budget_bytes);
    await context.close();
  }, 60_000);

  it("deletes the preview: its environment ends and the page says so", async () => {
    await page.goto(`${stack.apiUrl}/t/acme/environments/${ids.environment}`);
    await eventually(() => buttons(page, "Delete").count()).toBe(1);
    await buttons(page, "Delete").click();
    await eventually(() => page.locator(".facts .badge").textContent(), 30_000).toBe("terminated");
    expect(await buttons(page, "Rebuild").count()).toBe(0);
    await navLink(page, "Environments").click();
    await eventually(() => page.getByText("No live preview environments").count()).toBe(1);
  }, 60_000);
});
