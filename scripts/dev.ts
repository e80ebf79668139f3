// npm run dev: the whole API and the dashboard on this machine with no accounts. Starts the local database (PGlite,
// data in .stagely/), applies migrations, the local cloud (simulated VMs running the real agent on Docker, or the
// agent simulator), the local GitHub (scripts/local-github: App, git, webhooks, OAuth) unless .dev.vars configures a
// real GitHub App, and `wrangler dev`; prints what a developer needs (URLs, token, sign-in link, the demo command),
// then each preview's address as it becomes ready. Ctrl-C stops everything.
//
// Environment: PORT (default 8787; the next four ports are used too, so PORT=8797 runs a second checkout beside the
// first), STAGELY_DEV_DIR (data, default .stagely/), STAGELY_DEV_VARS (default .dev.vars), STAGELY_DEV_DB=postgres
// (a real PostgreSQL instead of PGlite), STAGELY_DEV_AGENTS=simulator|docker (default: Docker when it answers).
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { getDb, getSql } from "../src/db/client.ts";
import { applyMigrations } from "../src/db/migrate.ts";
import { parseConfig } from "../src/config.ts";
import { mintSignInLink, SIGN_IN_LINK_MINUTES } from "../src/auth/sign-in-links.ts";
import { keyringFromConfig, randomHex } from "../src/lib/crypto.ts";
import { configuresRealGitHubApp, devDir, devPorts, devStatePath, workerVars, type DevState, type LocalGitHubVars } from "./lib/dev-settings.ts";
import { isWranglerNoise } from "./lib/dev-output.ts";
import { DEV_VARS_PATH, readDevVars, writeDevVars } from "./lib/dev-vars.ts";
import { DEV_INSTALLATION, DEV_TEAM_ID, DEV_USER_ID, seedDevelopment } from "./lib/dev-seed.ts";
import { announcePreviews } from "./lib/dev-previews.ts";
import { loadMigrations } from "./lib/migration-files.ts";
import { realAgents, simulatedAgent, defaultAgents } from "./local-cloud/agents.ts";
import { startLocalCloud } from "./local-cloud/server.ts";
import { startLocalDatabase } from "./local-db/index.ts";
import { GITHUB_APP_ID, GITHUB_APP_SLUG, GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET, githubAppPrivateKey, startLocalGitHub } from "./local-github/github.ts";

const root = join(import.meta.dirname, "..");
const step = (text: string) => console.log(`[dev] ${text}`);
const fail = (text: string): never => {
  console.error(`[dev] ${text}`);
  process.exit(1);
};

let ports: ReturnType<typeof devPorts>;
try {
  ports = devPorts(process.env.PORT);
} catch (error) {
  fail((error as Error).message);
}
const dir = devDir();
const varsPath = process.env.STAGELY_DEV_VARS ?? DEV_VARS_PATH;
const apiUrl = `http://127.0.0.1:${ports!.api}`;
const database = "stagely";
mkdirSync(dir, { recursive: true });

if (!existsSync(varsPath)) {
  writeDevVars({ STAGELY_ENV: "development", LOG_LEVEL: "info", ENCRYPTION_KEY: randomHex(32) }, varsPath);
  step(`created ${varsPath} with a fresh local ENCRYPTION_KEY`);
}
const devVars = readDevVars(varsPath);
// npm run db:migrate and secrets:rotate read DATABASE_URL from .dev.vars: keep it pointing at this database.
const localDatabaseUrl = `postgres://stagely:local@127.0.0.1:${ports!.database}/${database}`;
const isLocal = (url: string) => !URL.canParse(url) || new URL(url).hostname === "127.0.0.1";
if (!devVars.DATABASE_URL || (isLocal(devVars.DATABASE_URL) && devVars.DATABASE_URL !== localDatabaseUrl)) {
  writeDevVars({ ...devVars, DATABASE_URL: localDatabaseUrl }, varsPath);
  devVars.DATABASE_URL = localDatabaseUrl;
}

const backend = process.env.STAGELY_DEV_DB === "postgres" ? "postgres" : "pglite";
const dataDir = join(dir, backend === "pglite" ? "pglite" : "postgres");
step(`starting the local database (${backend}${existsSync(dataDir) ? "" : ", first start: about 10 s"}) on port ${ports!.database} ...`);
const local = await startLocalDatabase({
  backend,
  port: ports!.database,
  dataDir,
  onError: (error) => console.error("[db] internal error:", error),
}).catch((error: unknown) =>
  fail(`could not start the local database: ${error instanceof Error ? error.message : String(error)}\n[dev] is another \`npm run dev\` using port ${ports!.database}? Start this one with another PORT (e.g. PORT=8797).`),
);
if (backend === "postgres") await local.server.backend.createDatabase(database).catch(() => {});
const { applied } = await applyMigrations(getSql(local.databaseUrl(database)), await loadMigrations());
if (applied.length) step(`${applied.length} migration(s) applied`);

const agentsChoice = process.env.STAGELY_DEV_AGENTS;
const cloudLog = (line: string) => console.log(`[local-cloud] ${line}`);
if (agentsChoice === "simulator" || agentsChoice === "docker") cloudLog(`VMs run ${agentsChoice === "docker" ? "the real agent on this machine's Docker engine" : "the agent simulator"} (STAGELY_DEV_AGENTS=${agentsChoice})`);
else if (agentsChoice) fail(`STAGELY_DEV_AGENTS must be simulator or docker, not "${agentsChoice}"`);
const startAgent = agentsChoice === "simulator" ? simulatedAgent : agentsChoice === "docker" ? realAgents({ log: cloudLog }) : await defaultAgents(cloudLog);
const cloud = await startLocalCloud({ port: ports!.cloud, log: cloudLog, startAgent }).catch((error: unknown) =>
  fail(`could not start the local cloud on port ${ports!.cloud}: ${error instanceof Error ? error.message : String(error)}`),
);

let github: LocalGitHubVars | null = null;
let stopGitHub = async () => {};
if (configuresRealGitHubApp(devVars)) {
  step(`GitHub: the GitHub App ${devVars.GITHUB_APP_ID} at ${devVars.GITHUB_API_URL ?? "https://api.github.com"} (configured in ${varsPath}); no local GitHub`);
} else {
  const webhookSecret = randomBytes(20).toString("hex");
  const started = await startLocalGitHub({
    port: ports!.github,
    gitRoot: join(dir, "github"),
    webhook: { url: `${apiUrl}/v1/webhooks/github`, secret: webhookSecret },
    installations: [{ id: DEV_INSTALLATION.id, account: "acme", repositories: [{ id: DEV_INSTALLATION.repositoryId, fullName: DEV_INSTALLATION.fullName }] }],
    approver: { user: { id: 1001, login: "developer", name: "Local Developer", avatar_url: null }, emails: [{ email: "developer@stagely.localhost", primary: true, verified: true, visibility: null }] },
  }).catch((error: unknown) => fail(`could not start the local GitHub on port ${ports!.github}: ${error instanceof Error ? error.message : String(error)}`));
  stopGitHub = started.stop;
  github = { url: started.url, appId: GITHUB_APP_ID, appSlug: GITHUB_APP_SLUG, privateKey: githubAppPrivateKey(), webhookSecret, clientId: GITHUB_CLIENT_ID, clientSecret: GITHUB_CLIENT_SECRET };
}

const vars = workerVars(devVars, ports!, database, github);
let devToken: string | undefined;
const tokenFile = join(dir, "dev-token");
if (vars.STAGELY_ENV === "development") {
  const keyring = await keyringFromConfig(parseConfig({ ...vars, STAGELY_ENV: "development" }));
  const seeded = await seedDevelopment(getDb(local.databaseUrl(database)), keyring, tokenFile, cloud.url);
  devToken = seeded.token;
  if (seeded.created) step('created the development user and team "dev" (with the local cloud as its cloud provider)');
}

// Its own process group, so stopping reaches wrangler's workerd children too. wrangler reads every variable from one
// file written here (not .dev.vars, and not on its command line, where any user of the machine could read secrets), so
// wrangler.toml's production values never win. STAGELY_DEV_ROUTES: the development routes (/v1/dev/*, used by
// `npm run agent:sim -- --dev`), left out of deploys.
const varsFile = join(dir, "wrangler.vars");
writeFileSync(varsFile, Object.entries(vars).map(([k, v]) => `${k}=${JSON.stringify(v)}\n`).join(""), { mode: 0o600 });
const wrangler = spawn(
  "npx",
  ["--no-install", "wrangler", "dev", "--ip", "127.0.0.1", "--port", String(ports!.api), "--inspector-port", String(ports!.inspector),
    "--persist-to", join(dir, "wrangler"), "--env-file", varsFile, "--test-scheduled", "--define", "STAGELY_DEV_ROUTES:true"],
  { cwd: root, stdio: ["ignore", "pipe", "pipe"], detached: true, env: { ...process.env, WRANGLER_SEND_METRICS: "false", FORCE_COLOR: "0" } },
);
for (const stream of [wrangler.stdout, wrangler.stderr]) {
  createInterface({ input: stream }).on("line", (line) => {
    if (!isWranglerNoise(line)) console.log(line);
  });
}

let stopping = false;
async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    rmSync(devStatePath(dir), { force: true });
    try {
      process.kill(-wrangler.pid!, "SIGTERM");
    } catch {
      // already gone
    }
    await cloud.stop();
    await stopGitHub();
    await local.stop();
  }
  process.exit(code);
}
process.on("SIGINT", () => void stop(0));
process.on("SIGTERM", () => void stop(0));
wrangler.on("exit", (code) => {
  if (!stopping) {
    console.error(`[dev] wrangler dev exited (code ${code}); stopping.`);
    void stop(code ?? 1);
  }
});

const REAPER_CRON = "*/5 * * * *";
for (let attempt = 0; attempt < 240 && !stopping; attempt++) {
  if (await fetch(`${apiUrl}/ready`).then((r) => r.ok, () => false)) {
    const state: DevState = {
      pid: process.pid,
      api_url: apiUrl,
      github_url: github?.url ?? null,
      token_file: tokenFile,
      preview_domain: vars.PREVIEW_DOMAIN!,
      api_port: ports!.api,
    };
    writeFileSync(devStatePath(dir), JSON.stringify(state, null, 2));
    const lines = [
      `Stagely API: ${apiUrl}   docs: ${apiUrl}/docs`,
      `local cloud: ${cloud.url}   GitHub: ${github ? `local, ${github.url} (pages for pull requests, deployments and comments)` : `the App configured in ${varsPath}`}`,
    ];
    if (devToken) {
      lines.push(`API token of the development user: ${devToken}`, `  try: curl -H "Authorization: Bearer ${devToken}" ${apiUrl}/v1/me`);
      const link = await mintSignInLink(getDb(local.databaseUrl(database)), vars.PUBLIC_URL!, DEV_USER_ID);
      lines.push(`dashboard: ${link}  (signs you in as the development user; works once, for ${SIGN_IN_LINK_MINUTES} minutes)`);
    }
    if (github) lines.push(`a preview from a pull request: npm run demo   (in another terminal; --repo <path to a git repository> for your own)`);
    lines.push(`the reaper runs every 5 minutes; now: curl '${apiUrl}/__scheduled?cron=${encodeURIComponent(REAPER_CRON)}'`, "Ctrl-C stops everything.");
    for (const line of lines) step(line);
    // wrangler dev runs no cron triggers by itself: this is the production schedule's reaper.
    setInterval(() => void fetch(`${apiUrl}/__scheduled?cron=${encodeURIComponent(REAPER_CRON)}`).catch(() => {}), 5 * 60_000).unref();
    announcePreviews({ db: getDb(local.databaseUrl(database)), apiUrl, previewDomain: vars.PREVIEW_DOMAIN!, devTeamId: DEV_TEAM_ID, devToken, log: step });
    break;
  }
  await new Promise((r) => setTimeout(r, 500));
}
