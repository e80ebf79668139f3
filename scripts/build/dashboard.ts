import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { build } from "esbuild";
import type { AssetBuilder } from "./assets.ts";

const source = join(import.meta.dirname, "..", "..", "dashboard");

/** The folder under build/assets that holds the dashboard's content-hashed bundle (served as /ui/...). */
const DASHBOARD_BUNDLE_DIR = "ui";

/**
 * The dashboard (dashboard/): one minified ES module and one stylesheet with content hashes in their names, and the
 * index.html shell that loads them.
 */
export const dashboard: AssetBuilder = {
  name: "dashboard",
  async build(write) {
    const result = await build({
      entryPoints: { app: join(source, "src", "main.tsx") },
      bundle: true,
      minify: true,
      format: "esm",
      target: "es2022",
      jsx: "automatic",
      jsxImportSource: "hono/jsx/dom",
      entryNames: "[name]-[hash]",
      // Paths are only names here (nothing is written by esbuild): outputs land under build/assets/ui.
      outdir: `/${DASHBOARD_BUNDLE_DIR}`,
      write: false,
      legalComments: "none",
      logLevel: "silent",
    });
    const outputs = result.outputFiles.map((file) => ({ path: file.path.replace(/^\/+/, ""), contents: file.contents }));
    const asset = (extension: string) => {
      const found = outputs.find((o) => o.path.endsWith(extension));
      if (!found) throw new Error(`the dashboard build produced no ${extension} file`);
      return `/${found.path}`;
    };
    const shell = (await readFile(join(source, "index.html"), "utf8")).replace("%APP_JS%", asset(".js")).replace("%APP_CSS%", asset(".css"));
    outputs.push({ path: "index.html", contents: new TextEncoder().encode(shell) });
    for (const output of outputs) await write(output.path, output.contents);
    return outputs.map((o) => o.path);
  },
};
