import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../scripts/lib/stack.ts";

/**
 * What the real-Docker tests and the agent benchmark stand on: a base image imported from Debian's busybox-static
 * (no Docker Hub here), a registry with htpasswd auth (Debian's docker-registry), and a test application whose builds
 * take seconds.
 */

export const BASE_IMAGE = "stagely-test/busybox:1";

/** True when a Docker engine answers. Without one: in CI (CI set) an error, locally a loud skip. */
export function requireDocker(what: string): boolean {
  try {
    execFileSync("docker", ["info"], { stdio: "ignore", timeout: 20_000 });
    return true;
  } catch {
    const help = "Install Docker (apt-get install docker.io docker-compose) and start dockerd, or run .ci/run, which does both.";
    if (process.env.CI) throw new Error(`${what} need a Docker engine and none answers \`docker info\`. ${help}`);
    console.warn(`\n!!! SKIPPED: ${what} need a Docker engine and none answers \`docker info\`.\n!!! ${help}\n`);
    return false;
  }
}

/** `docker …` with its output, throwing with stderr on failure. */
export function docker(...args: string[]): string {
  return execFileSync("docker", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

/**
 * Removes the images whose name holds `marker`. Untagged images a stopped build left behind stay: on an engine shared
 * with others, an untagged image is not known to be ours.
 */
export function removeTestImages(marker: string): void {
  const ids = docker("images", "--format", "{{.ID}} {{.Repository}}").split("\n").filter((line) => line.includes(marker)).map((line) => line.split(" ")[0]!);
  if (ids.length > 0) execFileSync("docker", ["rmi", "-f", ...new Set(ids)], { stdio: "ignore" });
}

/** The busybox base image, imported from /bin/busybox (busybox-static) when this engine does not have it. */
export function ensureBaseImage(): string {
  try {
    docker("image", "inspect", "--format", "{{.Id}}", BASE_IMAGE);
    return BASE_IMAGE;
  } catch {
    // imported below
  }
  const rootfs = mkdtempSync(join(tmpdir(), "stagely-busybox-"));
  try {
    mkdirSync(join(rootfs, "bin"));
    mkdirSync(join(rootfs, "tmp"));
    copyFileSync("/bin/busybox", join(rootfs, "bin", "busybox"));
    for (const applet of execFileSync("/bin/busybox", ["--list"], { encoding: "utf8" }).split("\n").filter(Boolean)) {
      if (applet !== "busybox") symlinkSync("busybox", join(rootfs, "bin", applet));
    }
    execFileSync("sh", ["-c", `tar -C '${rootfs}' -c . | docker import --change 'ENV PATH=/bin' - '${BASE_IMAGE}'`], { stdio: "ignore" });
    return BASE_IMAGE;
  } finally {
    rmSync(rootfs, { recursive: true, force: true });
  }
}

export interface TestRegistry {
  /** host:port, as image names and `docker login` use it. */
  address: string;
  username: string;
  password: string;
  stop(): Promise<void>;
}

/**
 * A registry with htpasswd auth: the one .ci/run started (STAGELY_TEST_REGISTRY=host:port with
 * STAGELY_TEST_REGISTRY_USER and STAGELY_TEST_REGISTRY_PASSWORD), or Debian's docker-registry on a free loopback port
 * (loopback registries need no TLS).
 */
export async function startRegistry(): Promise<TestRegistry> {
  const given = process.env.STAGELY_TEST_REGISTRY;
  if (given) {
    return { address: given, username: process.env.STAGELY_TEST_REGISTRY_USER ?? "", password: process.env.STAGELY_TEST_REGISTRY_PASSWORD ?? "", stop: async () => {} };
  }
  const dir = mkdtempSync(join(tmpdir(), "stagely-registry-"));
  const username = "stagely";
  const password = `registry-${randomBytes(8).toString("hex")}`;
  writeFileSync(join(dir, "htpasswd"), execFileSync("htpasswd", ["-Bbn", username, password], { encoding: "utf8" }));
  const port = await freePort();
  writeFileSync(
    join(dir, "config.yml"),
    [
      "version: 0.1",
      "log: {level: error}",
      `storage: {filesystem: {rootdirectory: ${join(dir, "data")}}, delete: {enabled: true}}`,
      `http: {addr: "127.0.0.1:${port}"}`,
      `auth: {htpasswd: {realm: stagely-test, path: ${join(dir, "htpasswd")}}}`,
      "",
    ].join("\n"),
  );
  const registry = spawn("docker-registry", ["serve", join(dir, "config.yml")], { stdio: "ignore" });
  const address = `127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  while ((await fetch(`http://${address}/v2/`).then((r) => r.status, () => 0)) !== 401) {
    if (Date.now() > deadline || registry.exitCode !== null) throw new Error("docker-registry did not start (apt-get install docker-registry apache2-utils)");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    address,
    username,
    password,
    async stop() {
      registry.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The test application: a web service built from the repository, with a healthcheck, and a store with a named volume. */
export function testApp(options: { marker: string; dockerfileRun?: string[]; healthcheck?: string[]; webCommand?: string }) {
  const dockerfile = [
    `FROM ${BASE_IMAGE}`,
    "ARG BUILD_NOTE=none",
    'RUN echo "build note: $BUILD_NOTE"',
    ...(options.dockerfileRun ?? []),
    "COPY www /www",
    'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]',
    "",
  ].join("\n");
  const compose = [
    "services:",
    "  web:",
    "    image: web",
    ...(options.webCommand ? [`    command: ${JSON.stringify(["sh", "-c", options.webCommand])}`] : []),
    '    ports: ["8080"]',
    // busybox as PID 1 ignores SIGTERM: without this every stop waits compose's 10 s.
    "    stop_grace_period: 1s",
    "    healthcheck:",
    `      test: ${JSON.stringify(options.healthcheck ?? ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"])}`,
    "      interval: 1s",
    "      timeout: 2s",
    "      retries: 2",
    "  store:",
    `    image: ${BASE_IMAGE}`,
    `    command: ["sh", "-c", "test -f /data/first || cat /proc/sys/kernel/random/uuid > /data/first; exec sleep 1000000"]`,
    "    volumes: [data:/data]",
    "    stop_grace_period: 1s",
    "volumes:",
    "  data: {}",
    "",
  ].join("\n");
  return {
    files: { "web/Dockerfile": dockerfile, "web/www/index.html": `${options.marker}\n`, "docker-compose.yml": compose },
    compose,
  };
}
