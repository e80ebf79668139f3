import { readFileSync } from "node:fs";
import { join } from "node:path";
import { LOCAL_PREVIEW_DOMAIN } from "./local-preview.ts";

const root = join(import.meta.dirname, "..", "..");

/**
 * The ports of one `npm run dev`, all derived from PORT (default 8787), so two checkouts run side by side with
 * `PORT=8797 npm run dev`. Tests and benchmarks pick free ports of their own (scripts/lib/stack.ts).
 */
export interface DevPorts {
  api: number;
  database: number;
  cloud: number;
  github: number;
  /** wrangler's inspector (its own default, 9229, would collide with a second checkout). */
  inspector: number;
}

export function devPorts(port: string | undefined): DevPorts {
  const api = Number(port ?? 8787);
  if (!Number.isInteger(api) || api < 1024 || api > 65530) throw new Error(`PORT must be a whole number from 1024 to 65530 (the next four ports are used too), not "${port}"`);
  return { api, database: api + 1, cloud: api + 2, github: api + 3, inspector: api + 4 };
}

/** Where `npm run dev` keeps its data (database, git repositories, token): STAGELY_DEV_DIR, default `.stagely/`. */
export function devDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.STAGELY_DEV_DIR ?? join(root, ".stagely");
}

/** The local GitHub's part of the Worker's configuration (see scripts/local-github). */
export interface LocalGitHubVars {
  url: string;
  appId: string;
  appSlug: string;
  privateKey: string;
  webhookSecret: string;
  clientId: string;
  clientSecret: string;
}

/** A developer who put a GitHub App's id in .dev.vars uses that App (and its GitHub): no local GitHub then. */
export function configuresRealGitHubApp(devVars: Record<string, string>): boolean {
  return Boolean(devVars.GITHUB_APP_ID);
}

/**
 * Every Worker variable `npm run dev` passes to `wrangler dev` (as --var, with .dev.vars itself not read by wrangler):
 * the developer's .dev.vars, then what this machine's services decide. PUBLIC_URL, PREVIEW_DOMAIN and DATABASE_URL
 * follow the ports, never wrangler.toml's production values; a local GitHub replaces every GITHUB_* setting.
 */
export function workerVars(devVars: Record<string, string>, ports: DevPorts, databaseName: string, github: LocalGitHubVars | null): Record<string, string> {
  return {
    ...devVars,
    PUBLIC_URL: `http://127.0.0.1:${ports.api}`,
    PREVIEW_DOMAIN: LOCAL_PREVIEW_DOMAIN,
    DATABASE_URL: `postgres://stagely:local@127.0.0.1:${ports.database}/${databaseName}`,
    ...(github
      ? {
          GITHUB_API_URL: github.url,
          GITHUB_WEB_URL: github.url,
          GITHUB_APP_ID: github.appId,
          GITHUB_APP_SLUG: github.appSlug,
          GITHUB_APP_PRIVATE_KEY: github.privateKey,
          GITHUB_WEBHOOK_SECRET: github.webhookSecret,
          GITHUB_CLIENT_ID: github.clientId,
          GITHUB_CLIENT_SECRET: github.clientSecret,
        }
      : {}),
  };
}

/** What a running `npm run dev` tells `npm run demo` (written to `<devDir>/dev.json`, removed when it stops). */
export interface DevState {
  pid: number;
  api_url: string;
  /** The local GitHub's URL; null when .dev.vars configures a real GitHub App. */
  github_url: string | null;
  token_file: string;
  preview_domain: string;
  api_port: number;
}

export const devStatePath = (dir: string) => join(dir, "dev.json");

/** The state of the `npm run dev` that uses `dir`, or why there is none. */
export function readDevState(dir: string): DevState | string {
  try {
    return JSON.parse(readFileSync(devStatePath(dir), "utf8")) as DevState;
  } catch {
    return `no running \`npm run dev\` found (${devStatePath(dir)} is missing): start it in another terminal first`;
  }
}
