import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { BuildCommand } from "../../src/agents/protocol.ts";
import { JobFailure } from "./job-context.ts";
import { runProcess, type RunOptions } from "./run-process.ts";

/** What this machine has: the engine, compose (v2 plugin or v1 `docker-compose`), buildx. */
export interface DockerTools {
  /** The engine's version, null when no engine answers. */
  engineVersion: string | null;
  /** How to run compose: `docker compose` (v2) or `docker-compose` (v1); null when neither is installed. */
  compose: { command: [string, ...string[]]; version: string } | null;
  buildx: boolean;
}

export type RegistryAuth = NonNullable<BuildCommand["registry_auth"]>;

async function firstLine(command: string, args: string[]): Promise<string | null> {
  try {
    const result = await runProcess(command, args, { captureStdout: true });
    return result.code === 0 ? (result.stdout.trim().split("\n")[0]?.trim() ?? null) || null : null;
  } catch {
    return null;
  }
}

/** Asks the installed tools (a few short processes): the compose v2 plugin is preferred, v1 is the fallback. */
export async function detectDocker(): Promise<DockerTools> {
  const [engineVersion, pluginVersion, standaloneVersion, buildxVersion] = await Promise.all([
    firstLine("docker", ["version", "--format", "{{.Server.Version}}"]),
    firstLine("docker", ["compose", "version", "--short"]),
    firstLine("docker-compose", ["version", "--short"]),
    firstLine("docker", ["buildx", "version"]),
  ]);
  const compose: DockerTools["compose"] = pluginVersion
    ? { command: ["docker", "compose"], version: pluginVersion.replace(/^v/, "") }
    : standaloneVersion
      ? { command: ["docker-compose"], version: standaloneVersion }
      : null;
  return { engineVersion, compose, buildx: buildxVersion !== null };
}

/** HELLO's compose_version: "2.29.1" for the plugin, "1.29.2 (docker-compose)" for v1. */
export function composeVersionLabel(tools: DockerTools): string | null {
  if (!tools.compose) return null;
  return tools.compose.command.length === 1 ? `${tools.compose.version} (docker-compose)` : tools.compose.version;
}

/**
 * Runs `work` with a Docker client configuration of its own (DOCKER_CONFIG in `dir`) where it is logged in to the
 * registry: the password goes through stdin, never an argument, and nothing is written to the machine's own
 * configuration. Logs out and removes the configuration afterwards, whatever happened. Without `auth`, `work` gets
 * the machine's configuration.
 */
export async function withRegistryLogin<T>(
  auth: RegistryAuth | null | undefined,
  dir: string,
  work: (env: Record<string, string>) => Promise<T>,
  options: Pick<RunOptions, "onLine" | "signal"> = {},
): Promise<T> {
  if (!auth) return work({});
  const config = join(dir, "docker-config");
  await mkdir(config, { recursive: true, mode: 0o700 });
  const env = { DOCKER_CONFIG: config };
  try {
    const login = await runProcess("docker", ["login", "--username", auth.username, "--password-stdin", auth.registry], {
      ...options,
      env,
      input: auth.password,
    });
    if (login.code !== 0) {
      throw new JobFailure("REGISTRY_LOGIN_FAILED", `docker login to ${auth.registry} failed: ${login.stderrTail.at(-1) ?? `exit code ${login.code}`}`);
    }
    return await work(env);
  } finally {
    await runProcess("docker", ["logout", auth.registry], { env }).catch(() => undefined);
    await rm(config, { recursive: true, force: true });
  }
}

/** `docker image inspect` of one field; null when there is no such image. */
export async function inspectImage(reference: string, format: string): Promise<string | null> {
  return firstLine("docker", ["image", "inspect", "--format", format, reference]);
}

/**
 * Removes every container, network and volume of the compose projects `matches` accepts (by compose's project label),
 * whether or not their compose files still exist.
 */
export async function removeComposeProjects(matches: (project: string) => boolean): Promise<void> {
  const label = "com.docker.compose.project";
  const list = async (args: string[]) => {
    const result = await runProcess("docker", args, { captureStdout: true });
    return result.stdout
      .split("\n")
      .map((line) => line.trim().split(" "))
      .filter(([id, project]) => id && project && matches(project))
      .map(([id]) => id!);
  };
  const containers = await list(["ps", "-a", "--filter", `label=${label}`, "--format", `{{.ID}} {{.Label "${label}"}}`]);
  if (containers.length > 0) await runProcess("docker", ["rm", "-f", "-v", ...containers]);
  const networks = await list(["network", "ls", "--filter", `label=${label}`, "--format", `{{.ID}} {{.Label "${label}"}}`]);
  if (networks.length > 0) await runProcess("docker", ["network", "rm", ...networks]);
  const volumes = await list(["volume", "ls", "--filter", `label=${label}`, "--format", `{{.Name}} {{.Label "${label}"}}`]);
  if (volumes.length > 0) await runProcess("docker", ["volume", "rm", "-f", ...volumes]);
}
