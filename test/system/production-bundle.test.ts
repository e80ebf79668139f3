import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = join(import.meta.dirname, "..", "..");

/** What `wrangler deploy` would upload (the same bundle as `npm run build`), with optional extra wrangler flags. */
async function bundle(...flags: string[]): Promise<string> {
  const outdir = await mkdtemp(join(tmpdir(), "stagely-bundle-"));
  try {
    await run("npx", ["--no-install", "wrangler", "deploy", "--dry-run", "--outdir", outdir, ...flags], {
      cwd: root,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    });
    return await readFile(join(outdir, "index.js"), "utf8");
  } finally {
    await rm(outdir, { recursive: true, force: true });
  }
}

describe("the production bundle", () => {
  it("leaves out the development routes; a development build has them", async () => {
    const production = await bundle();
    expect(production).toContain("/v1/agent/connect");
    expect(production).not.toContain("/v1/dev/");
    expect(await bundle("--define", "STAGELY_DEV_ROUTES:true")).toContain("/v1/dev/agents");
  }, 180_000);
});
