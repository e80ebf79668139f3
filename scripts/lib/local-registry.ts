import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * The image registry of `npm run dev` when VMs run the real agent: builders push there and preview VMs pull from
 * there, as they do from a team's registry in production. Debian's docker-registry (distribution) on a loopback
 * port, without auth (Docker needs no TLS for a loopback registry); its data stays in `dir`.
 */
export async function startLocalRegistry(options: { port: number; dir: string }): Promise<{ address: string; stop(): void }> {
  mkdirSync(options.dir, { recursive: true });
  const address = `127.0.0.1:${options.port}`;
  const config = join(options.dir, "config.yml");
  writeFileSync(
    config,
    ["version: 0.1", "log: {level: error}", `storage: {filesystem: {rootdirectory: ${join(options.dir, "data")}}, delete: {enabled: true}}`, `http: {addr: "${address}"}`, ""].join("\n"),
  );
  const registry = spawn("docker-registry", ["serve", config], { stdio: "ignore" });
  const failed = new Promise<Error>((resolve) => registry.once("error", resolve));
  const deadline = Date.now() + 20_000;
  while ((await fetch(`http://${address}/v2/`).then((r) => r.status, () => 0)) !== 200) {
    const error = await Promise.race([failed, new Promise<null>((r) => setTimeout(() => r(null), 100))]);
    if (error || registry.exitCode !== null || Date.now() > deadline) {
      registry.kill();
      throw new Error(`docker-registry did not start on ${address}${error ? ` (${error.message})` : ""}: install it (apt-get install docker-registry), or free the port`);
    }
  }
  return { address, stop: () => void registry.kill() };
}
