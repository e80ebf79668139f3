import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { agentBundle } from "./agent-bundle.ts";

/** The Worker's static assets (wrangler.toml [assets], binding ASSETS). */
export const ASSETS_DIR = join(import.meta.dirname, "..", "..", "build", "assets");

/** One kind of static asset: writes its files with `write` and returns their paths relative to build/assets. */
export interface AssetBuilder {
  name: string;
  build(write: (path: string, content: string | Uint8Array) => Promise<void>): Promise<string[]>;
}

const builders: AssetBuilder[] = [agentBundle];

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

/** Builds every asset into build/assets; returns the paths written (relative to it). */
export async function buildAssets(): Promise<string[]> {
  const written: string[] = [];
  for (const builder of builders) written.push(...(await builder.build(writeAsset)));
  return written;
}
