import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import { build } from "esbuild";

const source = join(import.meta.dirname, "..", "..", "dashboard");

/** The folder under build/assets that holds the dashboard's content-hashed bundle (served as /ui/...). */
export const DASHBOARD_BUNDLE_DIR = "ui";

/**
 * The dashboard (dashboard/): one minified ES module and one stylesheet with content hashes in their names, and the
 * index.html shell that loads them. Files are replaced only when their content changed, through a rename, so a
 * Worker runtime reading build/assets at the same time (vitest and wrangler dev both build) never sees half a file.
 */
export async function buildDashboard(dir: string): Promise<string[]> {
  const bundleDir = join(dir, DASHBOARD_BUNDLE_DIR);
  const result = await build({
    entryPoints: { app: join(source, "src", "main.tsx") },
    bundle: true,
    minify: true,
    format: "esm",
    target: "es2022",
    jsx: "automatic",
    jsxImportSource: "hono/jsx/dom",
    entryNames: "[name]-[hash]",
    outdir: bundleDir,
    write: false,
    legalComments: "none",
    logLevel: "silent",
  });
  const outputs = result.outputFiles.map((file) => ({ path: file.path, contents: file.contents }));
  const asset = (extension: string) => {
    const found = outputs.find((o) => o.path.endsWith(extension));
    if (!found) throw new Error(`the dashboard build produced no ${extension} file`);
    return `/${relative(dir, found.path).split("\\").join("/")}`;
  };
  const shell = readFileSync(join(source, "index.html"), "utf8").replace("%APP_JS%", asset(".js")).replace("%APP_CSS%", asset(".css"));
  outputs.push({ path: join(dir, "index.html"), contents: new TextEncoder().encode(shell) });

  for (const output of outputs) writeIfChanged(output.path, output.contents);
  // Bundles of earlier builds are left behind only until the next build.
  const current = new Set(outputs.map((o) => basename(o.path)));
  for (const name of readdirSync(bundleDir)) if (!current.has(name) && !name.endsWith(".tmp")) rmSync(join(bundleDir, name), { force: true });
  return outputs.map((o) => o.path);
}

function writeIfChanged(path: string, contents: Uint8Array): void {
  if (existsSync(path) && Buffer.from(readFileSync(path)).equals(Buffer.from(contents))) return;
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, contents);
  renameSync(temporary, path);
}
