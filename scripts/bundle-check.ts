// npm run bundle:check: builds the deploy bundle as `wrangler deploy` would (minified, wrangler.toml), prints its size
// and the packages and source folders that contribute most (esbuild's metafile), and fails when the gzip size is over
// the budget in bundle-budget.json. CI runs it (.ci/run). Raising the budget is a decision: say why in the commit.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const root = join(import.meta.dirname, "..");
const budget = JSON.parse(readFileSync(join(root, "bundle-budget.json"), "utf8")) as { gzip_kib: number };
const outdir = mkdtempSync(join(tmpdir(), "stagely-bundle-check-"));
try {
  console.log("[bundle:check] building the deploy bundle (wrangler deploy --dry-run) ...");
  const output = execFileSync("npx", ["--no-install", "wrangler", "deploy", "--dry-run", "--outdir", outdir, "--metafile", join(outdir, "meta.json")], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  });
  const reported = /Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/.exec(output);
  if (!reported) throw new Error(`wrangler's output has no "Total Upload" line:\n${output}`);
  const [total, gzip] = [Number(reported[1]), Number(reported[2])];

  // Where the bytes come from: output bytes per npm package, and per folder of ours.
  const meta = JSON.parse(readFileSync(join(outdir, "meta.json"), "utf8")) as {
    outputs: Record<string, { entryPoint?: string; inputs: Record<string, { bytesInOutput: number }> }>;
  };
  const entry = Object.values(meta.outputs).find((o) => o.entryPoint);
  if (!entry) throw new Error("the metafile names no entry point output");
  const byOrigin = new Map<string, number>();
  for (const [path, { bytesInOutput }] of Object.entries(entry.inputs)) {
    const inPackage = path.split("node_modules/").at(-1)!;
    const origin = path.includes("node_modules/")
      ? inPackage.split("/").slice(0, inPackage.startsWith("@") ? 2 : 1).join("/")
      : path.split("/").slice(0, 2).join("/");
    byOrigin.set(origin, (byOrigin.get(origin) ?? 0) + bytesInOutput);
  }
  const bundle = readFileSync(join(outdir, "index.js"));
  const top = [...byOrigin].sort((a, b) => b[1] - a[1]).slice(0, 12);
  console.log("[bundle:check] top contributors (minified bytes in the bundle):");
  for (const [origin, bytes] of top) {
    console.log(`  ${(bytes / 1024).toFixed(1).padStart(7)} KiB  ${((bytes / bundle.length) * 100).toFixed(1).padStart(5)}%  ${origin}`);
  }
  console.log(`[bundle:check] bundle ${total} KiB, gzip ${gzip} KiB (budget ${budget.gzip_kib} KiB gzip; index.js alone gzips to ${(gzipSync(bundle).length / 1024).toFixed(1)} KiB)`);
  console.log(JSON.stringify({ scenario: "bundle", total_kib: total, gzip_kib: gzip, budget_gzip_kib: budget.gzip_kib, top: Object.fromEntries(top.map(([o, b]) => [o, Math.round(b / 1024)])) }));
  if (gzip > budget.gzip_kib) {
    console.error(
      `[bundle:check] FAILED: the bundle is ${gzip} KiB gzip, over the budget of ${budget.gzip_kib} KiB in bundle-budget.json.\n` +
        "  Find what grew in the list above (compare with main); import only what you use (`import * as z from \"zod\"`, not `{ z }`),\n" +
        "  or raise the budget in bundle-budget.json with a commit that says why.",
    );
    process.exitCode = 1;
  }
} finally {
  rmSync(outdir, { recursive: true, force: true });
}
