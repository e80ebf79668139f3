import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { agentBundle } from "./agent-bundle.ts";
import { dashboard } from "./dashboard.ts";

/** The Worker's static assets (wrangler.toml [assets], binding ASSETS). */
export const ASSETS_DIR = join(import.meta.dirname, "..", "..", "build", "assets");

/** One kind of static asset: writes its files with `write` and returns their paths relative to build/assets. */
export interface AssetBuilder {
  name: string;
  build(write: (path: string, content: string | Uint8Array) => Promise<void>): Promise<string[]>;
}

const builders: AssetBuilder[] = [agentBundle, dashboard];

/**
 * Writes a file only when its content changed (wrangler dev reloads on every change in build/assets), through a
 * temporary file and a rename so a reader never sees half of it.
 */
async function writeAsset(path: string, content: string | Uint8Array): Promise<void> {
  const target = join(ASSETS_DIR, path);
  const bytes = typeof content === "string" ? Buffer.from(content) : Buffer.from(content);
  const current = await readFile(target).catch(() => null);
  if (current?.equals(bytes)) return;
  await mkdir(dirname(target), { recursive: true });
  const temporary = `${target}.${randomBytes(6).toString("hex")}.tmp`;
  await writeFile(temporary, bytes);
  await rename(temporary, target);
}

/**
 * Builds every asset into build/assets and removes what an earlier build left there (content-hashed bundles of older
 * builds); returns the paths written (relative to it).
 */
export async function buildAssets(): Promise<string[]> {
  const written: string[] = [];
  for (const builder of builders) written.push(...(await builder.build(writeAsset)));
  const current = new Set(written);
  for (const entry of await readdir(ASSETS_DIR, { recursive: true, withFileTypes: true })) {
    const path = relative(ASSETS_DIR, join(entry.parentPath, entry.name)).split("\\").join("/");
    if (entry.isFile() && !current.has(path) && !path.endsWith(".tmp")) await rm(join(ASSETS_DIR, path), { force: true });
  }
  return written;
}
