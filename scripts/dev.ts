// npm run dev: the whole API and the dashboard on this machine with no accounts. Starts the local database (PGlite,
// data in .stagely/), applies migrations, runs `wrangler dev`, and prints the URL, an API token and a one-time sign-in
// link for the dashboard, then each preview's address as it becomes ready (http://<hash>.preview.localhost:<port>/:
// browsers and curl resolve *.localhost here). Ctrl-C stops everything.
import { spawn } from "node:child_process";
import { eq } from "drizzle-orm";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { getDb, getSql, LOCAL_DB_DEFAULT_PORT } from "../src/db/client.ts";
import { applyMigrations } from "../src/db/migrate.ts";
import { environments, projects } from "../src/db/schema.ts";
import { parseConfig } from "../src/config.ts";
import { mintSignInLink, SIGN_IN_LINK_MINUTES } from "../src/auth/sign-in-links.ts";
import { keyringFromConfig, randomHex } from "../src/lib/crypto.ts";
import { DEV_VARS_PATH, readDevVars, writeDevVars } from "./lib/dev-vars.ts";
import { DEV_TEAM_ID, DEV_USER_ID, seedDevelopment } from "./lib/dev-seed.ts";
import { LOCAL_PREVIEW_DOMAIN } from "./lib/local-preview.ts";
import { loadMigrations } from "./lib/migration-files.ts";
import { startLocalCloud } from "./local-cloud/server.ts";
import { startLocalDatabase } from "./local-db/index.ts";

const root = join(import.meta.dirname, "..");
const apiPort = Number(process.env.PORT ?? 8787);
const step = (text: string) => console.log(`[dev] ${text}`);

if (!existsSync(DEV_VARS_PATH)) {
  writeDevVars({
    STAGELY_ENV: "development",
    LOG_LEVEL: "info",
    DATABASE_URL: `postgres://stagely:local@127.0.0.1:${LOCAL_DB_DEFAULT_PORT}/stagely`,
    ENCRYPTION_KEY: randomHex(32),
  });
  step("created .dev.vars with a fresh local ENCRYPTION_KEY");
}
const vars = readDevVars();
if (!vars.PUBLIC_URL || !vars.PREVIEW_DOMAIN) {
  // Agents and OAuth callbacks reach this machine's API, and previews its *.preview.localhost names, not the
  // production URL and domain in wrangler.toml.
  vars.PUBLIC_URL ??= `http://127.0.0.1:${apiPort}`;
  vars.PREVIEW_DOMAIN ??= LOCAL_PREVIEW_DOMAIN;
  writeDevVars(vars);
}
const databaseUrl = new URL(vars.DATABASE_URL ?? "");
const database = databaseUrl.pathname.slice(1);

step("starting the local database (PGlite; the first start takes about 10 s) ...");
const local = await startLocalDatabase({
  backend: "pglite",
  port: Number(databaseUrl.port || LOCAL_DB_DEFAULT_PORT),
  dataDir: join(root, ".stagely", "pglite"),
  onError: (error) => console.error("[db] internal error:", error),
}).catch((error: unknown) => {
  console.error(`[dev] could not start the local database: ${error instanceof Error ? error.message : String(error)}`);
  console.error(`[dev] is another \`npm run dev\` running? Port ${databaseUrl.port || LOCAL_DB_DEFAULT_PORT} must be free.`);
  process.exit(1);
});

const { applied } = await applyMigrations(getSql(local.databaseUrl(database)), await loadMigrations(), (p) =>
  step(`migration ${p.index}/${p.total} ${p.tag}: ${p.state === "applied" ? "applied" : "up to date"}`),
);
step(applied.length ? `${applied.length} migration(s) applied` : "database schema is up to date");

let devToken: string | undefined;
if (vars.STAGELY_ENV === "development") {
  const keyring = await keyringFromConfig(parseConfig({ ...vars, STAGELY_ENV: "development" }));
  const seeded = await seedDevelopment(getDb(local.databaseUrl(database)), keyring, join(root, ".stagely", "dev-token"));
  devToken = seeded.token;
  step(seeded.created ? "created the development user and team \"dev\"" : "development user and team \"dev\" ready");
}

step("starting the local cloud (simulated VMs whose agents dial this API) ...");
const cloud = await startLocalCloud({ log: (line) => console.log(`[local-cloud] ${line}`) });

// Its own process group, so stopping reaches wrangler's workerd children too.
// STAGELY_DEV_ROUTES: the development routes (/v1/dev/*, used by `npm run agent:sim -- --dev`), left out of deploys.
const wrangler = spawn("npx", ["--no-install", "wrangler", "dev", "--ip", "127.0.0.1", "--port", String(apiPort), "--define", "STAGELY_DEV_ROUTES:true"], {
  cwd: root,
  stdio: "inherit",
  detached: true,
  env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
});

let stopping = false;
async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    try {
      process.kill(-wrangler.pid!, "SIGTERM");
    } catch {
      // already gone
    }
    await cloud.stop();
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

const url = `http://127.0.0.1:${apiPort}`;
for (let attempt = 0; attempt < 120 && !stopping; attempt++) {
  const ready = await fetch(`${url}/ready`).then((r) => r.ok, () => false);
  if (ready) {
    step(`Stagely API is ready at ${url}  (docs: ${url}/docs)  Ctrl-C stops everything.`);
    if (devToken) {
      step(`API token of the development user: ${devToken}\n[dev]   try: curl -H "Authorization: Bearer ${devToken}" ${url}/v1/me`);
      const link = await mintSignInLink(getDb(local.databaseUrl(database)), vars.PUBLIC_URL ?? url, DEV_USER_ID);
      step(`dashboard: open ${link}  (signs you in as the development user; works once, for ${SIGN_IN_LINK_MINUTES} minutes)`);
    }
    announcePreviews();
    break;
  }
  await new Promise((r) => setTimeout(r, 500));
}

/**
 * Prints each preview's local address when it becomes ready (again after a redeploy). A team-only preview of the
 * development team is printed as a share link (made with the development user's token): GitHub sign-in is not
 * configured locally.
 */
function announcePreviews(): void {
  const db = getDb(local.databaseUrl(database));
  const announced = new Map<string, number>();
  const check = async () => {
    const ready = await db
      .select({ id: environments.id, hash: environments.subdomainHash, pr: environments.prNumber, deployedAt: environments.deployedAt, project: projects.slug, teamId: projects.teamId, access: projects.previewAccess })
      .from(environments)
      .innerJoin(projects, eq(projects.id, environments.projectId))
      .where(eq(environments.status, "ready"));
    for (const preview of ready) {
      const deployed = preview.deployedAt?.getTime() ?? 0;
      if (announced.get(preview.id) === deployed) continue;
      announced.set(preview.id, deployed);
      const address = `http://${preview.hash}.${vars.PREVIEW_DOMAIN}:${apiPort}/`;
      let note = preview.access === "public" ? "" : "  (team-only: send X-Stagely-Token, or make the project public)";
      let link = address;
      if (preview.access === "team" && preview.teamId === DEV_TEAM_ID && devToken) {
        const share = await fetch(`${url}/v1/environments/${preview.id}/share-tokens`, {
          method: "POST",
          headers: { Authorization: `Bearer ${devToken}`, "content-type": "application/json" },
          body: JSON.stringify({ name: "npm run dev", expires_in_hours: 24 }),
        });
        if (share.ok) {
          link = ((await share.json()) as { url: string }).url.replace(/^https:\/\/[^/]+\//, address);
          note = "  (team-only: this share link sets a cookie for it, 24 h)";
        }
      }
      step(`preview ready: ${preview.project} #${preview.pr} at ${link}${note}`);
    }
  };
  setInterval(() => void check().catch((error: unknown) => console.error(`[dev] could not list previews: ${error instanceof Error ? error.message : String(error)}`)), 3000);
}
