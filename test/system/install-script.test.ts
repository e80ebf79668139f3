import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { AGENT_NODE, renderCloudInit } from "../../src/providers/cloud-init.ts";

// The install script cloud-init runs, executed for real with sh, curl, sha256sum and tar against a local server:
// only what would change this machine (apt-get, systemctl, iptables; docker and git to play a machine that has them)
// is replaced by commands that record their arguments, and the install folder is moved under a temporary directory.

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");
const dir = mkdtempSync(join(tmpdir(), "stagely-install-"));
const files = new Map<string, Buffer>();
let server: Server;
let base: string;

beforeAll(async () => {
  // Node's tarball as the npm registry publishes it: package/bin/node.
  const packageDir = join(dir, "pack", "package", "bin");
  mkdirSync(packageDir, { recursive: true });
  writeFileSync(join(packageDir, "node"), "#!/bin/sh\necho v24-test\n", { mode: 0o755 });
  execFileSync("tar", ["-czf", join(dir, "node.tgz"), "-C", join(dir, "pack"), "package"]);
  files.set("/node.tgz", readFileSync(join(dir, "node.tgz")));
  files.set("/v1/agent/stagely-agent.mjs", Buffer.from("// Stagely agent (test)\n"));
  server = createServer((req, res) => {
    const file = files.get(req.url ?? "");
    res.writeHead(file ? 200 : 404).end(file ?? "not found");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the rendered install script; returns its exit code, what the recording commands saw, and the install folder. */
async function install(agentSha256: string, name: string, machine: { docker: boolean }) {
  const root = join(dir, name);
  const stubs = join(root, "stubs");
  const home = join(root, "opt-stagely");
  mkdirSync(stubs, { recursive: true });
  // The real tools the script uses, and nothing else of this machine (its docker must not be found).
  for (const tool of ["curl", "sha256sum", "tar", "gzip", "mkdir", "mv", "rm"]) symlinkSync(execFileSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" }).trim(), join(stubs, tool));
  for (const command of ["apt-get", "systemctl", "iptables", ...(machine.docker ? ["docker", "git"] : [])]) {
    writeFileSync(join(stubs, command), `#!/bin/sh\necho "${command} $*" >> '${join(root, "calls")}'\n`);
    chmodSync(join(stubs, command), 0o755);
  }
  const userData = parse(renderCloudInit({ agentId: "agt_0123456789abcdef", token: "t", coreUrl: base, role: "preview", environmentId: "env_1", architecture: "amd64", agentSha256 })) as {
    write_files: { path: string; content: string }[];
  };
  const script = userData.write_files
    .find((f) => f.path === "/usr/local/lib/stagely/install-agent.sh")!
    .content.replaceAll("/opt/stagely", home)
    .replace(AGENT_NODE.amd64.url, `${base}/node.tgz`)
    .replace(AGENT_NODE.amd64.sha256, sha256(files.get("/node.tgz")!));
  writeFileSync(join(root, "install.sh"), script);
  // Not spawnSync: this process serves the downloads.
  const child = spawn("/bin/sh", [join(root, "install.sh")], { env: { ...process.env, PATH: stubs }, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  const calls = existsSync(join(root, "calls")) ? readFileSync(join(root, "calls"), "utf8").trim().split("\n") : [];
  return { code, stderr, calls, home };
}

describe("the VM install script", () => {
  it("installs the pinned Node and the agent whose SHA-256 matches, then enables the agent's unit", async () => {
    const { code, stderr, calls, home } = await install(sha256(files.get("/v1/agent/stagely-agent.mjs")!), "good", { docker: true });
    expect(code, stderr).toBe(0);
    expect(execFileSync(join(home, "node"), { encoding: "utf8" })).toBe("v24-test\n");
    expect(readFileSync(join(home, "stagely-agent.mjs"), "utf8")).toBe("// Stagely agent (test)\n");
    expect(existsSync(join(home, "node.tgz"))).toBe(false);
    expect(calls).toEqual([
      "docker compose version",
      "systemctl enable --now docker",
      "iptables -I DOCKER-USER -d 169.254.169.254/32 -j REJECT",
      "systemctl daemon-reload",
      "systemctl enable --now stagely-agent.service",
    ]);
  });

  it("refuses an agent whose SHA-256 does not match: nothing is installed and the unit is never started", async () => {
    const { code, stderr, calls, home } = await install("0".repeat(64), "tampered", { docker: true });
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/FAILED|did NOT match/);
    expect(existsSync(join(home, "stagely-agent.mjs"))).toBe(false);
    expect(calls).not.toContain("systemctl enable --now stagely-agent.service");
  });

  it("installs Docker, compose v2 and git from the distribution's packages on a machine without them", async () => {
    const { code, stderr, calls } = await install(sha256(files.get("/v1/agent/stagely-agent.mjs")!), "stock", { docker: false });
    expect(code, stderr).toBe(0);
    expect(calls.slice(0, 4)).toEqual([
      "apt-get update",
      "apt-get install -y --no-install-recommends docker.io docker-compose-v2 git ca-certificates curl",
      "apt-get install -y --no-install-recommends docker-buildx",
      "systemctl enable --now docker",
    ]);
  });
});
