import { env } from "cloudflare:workers";
import { getDb, getSql } from "../src/db/client.ts";

/** This test file's own database (cloned from the migrated template by vitest.config.ts). */
export const db = getDb(env.DATABASE_URL);
export const sql = getSql(env.DATABASE_URL);

/** Round trips the local server has answered for this file's database so far. */
export async function roundTrips(): Promise<number> {
  const response = await fetch(`${env.TEST_LOCAL_DB_URL}/_stagely/stats?database=${env.TEST_DATABASE_NAME}`);
  return ((await response.json()) as { round_trips: number }).round_trips;
}

/**
 * Waits until nothing has used this file's database for `quietMs` (queue consumers of earlier requests done), so
 * a count that follows measures only its own work.
 */
export async function waitForQuiet(quietMs = 300, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = await roundTrips();
  let stableSince = Date.now();
  while (Date.now() - stableSince < quietMs && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    const now = await roundTrips();
    if (now !== last) {
      last = now;
      stableSince = Date.now();
    }
  }
}

/** Runs `work` and returns how many database round trips it made. */
export async function countRoundTrips(work: () => Promise<unknown>): Promise<number> {
  const before = await roundTrips();
  await work();
  return (await roundTrips()) - before;
}

/** A database of its own for a test that must see nothing else (e.g. migrations from zero). */
export async function createEmptyDatabase(): Promise<string> {
  const response = await fetch(`${env.TEST_LOCAL_DB_URL}/_stagely/databases`, { method: "POST", body: "{}" });
  const { name } = (await response.json()) as { name: string };
  const url = new URL(env.DATABASE_URL);
  url.pathname = `/${name}`;
  return url.toString();
}
