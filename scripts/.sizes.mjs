import * as esbuild from "esbuild";
import { gzipSync } from "node:zlib";
const pkgs = ["", "@neondatabase/serverless", "zod", "yaml", "drizzle-orm", "hono", "aws4fetch", "nanoid", "@hono/zod-validator"];
let base;
for (const p of pkgs) {
  const r = await esbuild.build({ entryPoints: ["src/index.ts"], bundle: true, minify: true, format: "esm", write: false, platform: "neutral", conditions: ["workerd","worker","browser"], mainFields: ["browser","module","main"], external: ["cloudflare:*","node:*", ...(p ? [p, p + "/*"] : [])], logLevel: "silent", define: { STAGELY_DEV_ROUTES: "false" } });
  const size = gzipSync(r.outputFiles[0].contents, { level: 9 }).length / 1024;
  if (!p) base = size;
  console.log((p || "ALL").padEnd(30), size.toFixed(1), p ? "-" + (base - size).toFixed(1) : "");
}
const r = await esbuild.build({ entryPoints: ["src/index.ts"], bundle: true, minify: true, format: "esm", write: false, metafile: true, platform: "neutral", conditions: ["workerd","worker","browser"], mainFields: ["browser","module","main"], external: ["cloudflare:*","node:*"], logLevel: "silent", define: { STAGELY_DEV_ROUTES: "false" } });
const out = Object.values(r.metafile.outputs)[0];
const by = new Map();
for (const [p, { bytesInOutput }] of Object.entries(out.inputs)) { if (p.includes("node_modules")) continue; const k = p.split("/").slice(0, 3).join("/"); by.set(k, (by.get(k) ?? 0) + bytesInOutput); }
for (const [k, v] of [...by].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log((v / 1024).toFixed(1).padStart(7), k);
const files = Object.entries(out.inputs).filter(([p]) => !p.includes("node_modules")).sort((a, b) => b[1].bytesInOutput - a[1].bytesInOutput).slice(0, 25);
for (const [p, { bytesInOutput }] of files) console.log((bytesInOutput / 1024).toFixed(1).padStart(7), p);
