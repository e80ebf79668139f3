import { mkdirSync } from "node:fs";
import { join } from "node:path";

export const ASSETS_DIR = join(import.meta.dirname, "..", "..", "build", "assets");

/** One part of the static assets (the agent bundle, the dashboard): writes its files under `dir`, returns their paths. */
export type AssetBuilder = (dir: string) => Promise<string[]>;

const builders: AssetBuilder[] = [];

/** Builds every part of the Worker's static assets into build/assets. */
export async function buildAssets(dir = ASSETS_DIR): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const build of builders) written.push(...(await build(dir)));
  return written;
}
