import type { TestProject } from "vitest/node";
import { getSql } from "../src/db/client.ts";
import { applyMigrations } from "../src/db/migrate.ts";
import { defaultTestBackend, startLocalDatabase } from "../scripts/local-db/index.ts";
import { loadMigrations } from "../scripts/lib/migration-files.ts";
import { startFakes } from "./fakes/index.ts";

export const TEMPLATE_DATABASE = "stagely_template";

/**
 * Runs once, in Node: starts the local Neon-protocol server on a real PostgreSQL (or PGlite) and migrates a template
 * database. vitest.config.ts clones the template for every test file, so each file has its own database.
 */
export default async function setup(project: TestProject) {
  const backend = defaultTestBackend();
  const local = await startLocalDatabase({ backend, onError: (error) => console.error("local database server:", error) });
  await local.server.backend.createDatabase(TEMPLATE_DATABASE);
  await applyMigrations(getSql(local.databaseUrl(TEMPLATE_DATABASE)), await loadMigrations());
  project.provide("localDbUrl", local.server.url);
  project.provide("localDbBackend", backend);
  project.provide("hostNodeVersion", process.version);
  const fakes = await startFakes();
  project.provide("fakeUrls", JSON.stringify(fakes.urls));
  return async () => {
    await fakes.stop();
    await local.stop();
  };
}

declare module "vitest" {
  export interface ProvidedContext {
    localDbUrl: string;
    localDbBackend: string;
    hostNodeVersion: string;
    fakeUrls: string;
  }
}
