import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultTestBackend } from "../../scripts/local-db/index.ts";

const root = join(import.meta.dirname, "..", "..");

/**
 * `npm run dev` as a user starts it, in a process of its own: on a port of the test's own (everything else derives
 * from PORT), with a data folder and .dev.vars of its own, and `npm run demo` against it.
 */
export interface DevSession {
  port: number;
  home: string;
  output(): string;
  demo(...args: string[]): Promise<{ code: number; output: string }>;
  stop(): Promise<void>;
}

/** A base port whose next four are free too (npm run dev uses PORT to PORT+4). */
async function freePortRange(): Promise<number> {
  const free = (p: number) =>
    new Promise<boolean>((resolve) => {
      const probe = createServer();
      probe.once("error", () => resolve(false));
      probe.listen(p, "127.0.0.1", () => probe.close(() => resolve(true)));
    });
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const all = await Promise.all([0, 1, 2, 3, 4].map((i) => free(base + i)));
    if (all.every(Boolean)) return base;
  }
}

export async function startDevSession(agents: "simulator" | "docker"): Promise<DevSession> {
  const home = mkdtempSync(join(tmpdir(), "stagely-demo-"));
  const env = { ...process.env, STAGELY_DEV_DIR: join(home, "dev"), STAGELY_DEV_VARS: join(home, "dev.vars"), STAGELY_DEV_DB: defaultTestBackend(), STAGELY_DEV_AGENTS: agents };
  const port = await freePortRange();
  let output = "";
  const dev: ChildProcess = spawn("npm", ["run", "dev"], { cwd: root, env: { ...env, PORT: String(port) }, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  dev.stdout!.on("data", (chunk) => (output += chunk));
  dev.stderr!.on("data", (chunk) => (output += chunk));
  const stop = async () => {
    if (dev.pid && dev.exitCode === null) {
      const exited = new Promise((resolve) => dev.once("exit", resolve));
      process.kill(-dev.pid, "SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
    }
    rmSync(home, { recursive: true, force: true });
  };
  const deadline = Date.now() + 150_000;
  while (!output.includes("Ctrl-C stops everything.")) {
    if (Date.now() > deadline || dev.exitCode !== null) {
      await stop();
      throw new Error(`npm run dev did not start:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    port,
    home,
    output: () => output,
    demo: (...args) =>
      new Promise((resolve) => {
        execFile("npm", ["run", "--silent", "demo", "--", ...args], { cwd: root, env, timeout: 280_000 }, (error, stdout, stderr) => {
          resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` });
        });
      }),
    stop,
  };
}
