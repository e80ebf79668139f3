import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";

/** wrangler.toml [assets] directory: the Worker's static files (binding ASSETS). */
export const ASSETS_DIR = join(import.meta.dirname, "..", "..", "build", "assets");

/**
 * Makes build/assets ready for wrangler and the tests, and answers the files it holds. Nothing is bundled into it
 * yet (the agent bundle and the dashboard will be); the directory must exist before the Worker's runtime starts.
 */
export async function buildAssets(): Promise<string[]> {
  await mkdir(ASSETS_DIR, { recursive: true });
  return readdir(ASSETS_DIR, { recursive: true });
}
