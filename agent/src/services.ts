import type { ServiceReport } from "../../src/agents/protocol.ts";
import { runProcess } from "./run-process.ts";

const PROJECT_LABEL = "com.docker.compose.project";
const SERVICE_LABEL = "com.docker.compose.service";
const ONE_OFF_LABEL = "com.docker.compose.oneoff";

/** The parts of `docker inspect` a service report needs. */
export interface ServiceContainer {
  id: string;
  service: string;
  /** created, running, restarting, exited, dead, … */
  state: string;
  exitCode: number;
  /** null when the service has no healthcheck. */
  health: string | null;
  /** Container port → host port, for published ports. */
  published: Map<number, { hostIp: string; hostPort: number }>;
  /** Container ports it exposes, published or not. */
  ports: number[];
  /** Its addresses on the project's networks. */
  addresses: string[];
}

interface InspectedContainer {
  Id: string;
  Config: { Labels: Record<string, string> | null; ExposedPorts?: Record<string, unknown> | null };
  State: { Status: string; ExitCode: number; Health?: { Status: string } | null };
  NetworkSettings: {
    Ports: Record<string, { HostIp: string; HostPort: string }[] | null> | null;
    Networks: Record<string, { IPAddress: string }> | null;
  };
}

/** The containers of a compose project, one per service (one-off `run` containers left out), by service name. */
export async function projectContainers(project: string): Promise<ServiceContainer[]> {
  const listed = await runProcess("docker", ["ps", "-a", "-q", "--filter", `label=${PROJECT_LABEL}=${project}`], { captureStdout: true });
  const ids = listed.stdout.split("\n").map((id) => id.trim()).filter(Boolean);
  if (ids.length === 0) return [];
  const inspected = await runProcess("docker", ["inspect", ...ids], { captureStdout: true });
  if (inspected.code !== 0) return [];
  const byService = new Map<string, ServiceContainer>();
  for (const container of JSON.parse(inspected.stdout) as InspectedContainer[]) {
    const labels = container.Config.Labels ?? {};
    const service = labels[SERVICE_LABEL];
    if (!service || labels[ONE_OFF_LABEL] === "True" || byService.has(service)) continue;
    const published = new Map<number, { hostIp: string; hostPort: number }>();
    for (const [key, bindings] of Object.entries(container.NetworkSettings.Ports ?? {})) {
      const binding = bindings?.find((b) => b.HostPort);
      if (key.endsWith("/tcp") && binding) published.set(Number.parseInt(key, 10), { hostIp: binding.HostIp, hostPort: Number(binding.HostPort) });
    }
    const ports = Object.keys(container.Config.ExposedPorts ?? container.NetworkSettings.Ports ?? {})
      .filter((key) => key.endsWith("/tcp"))
      .map((key) => Number.parseInt(key, 10))
      .sort((a, b) => a - b);
    byService.set(service, {
      id: container.Id,
      service,
      state: container.State.Status,
      exitCode: container.State.ExitCode,
      health: container.State.Health?.Status ?? null,
      published,
      ports,
      addresses: Object.values(container.NetworkSettings.Networks ?? {}).map((n) => n.IPAddress).filter(Boolean),
    });
  }
  return [...byService.values()].sort((a, b) => a.service.localeCompare(b.service));
}

/** A container as STATUS reports it: `status` "running" or "exited (1)", the first port it exposes. */
export function serviceReport(container: ServiceContainer): ServiceReport {
  return {
    name: container.service,
    status: container.state === "exited" ? `exited (${container.exitCode})` : container.state,
    container_id: container.id.slice(0, 12),
    port: container.ports[0] ?? null,
    health: container.health,
  };
}

/**
 * Where the agent reaches a service's port on this machine: the published port on the loopback address when the
 * compose file publishes it, else the container's address on the project network. Null when the service has no
 * container (or no address).
 */
export async function resolveServiceAddress(project: string, target: { service: string; port: number }): Promise<{ host: string; port: number } | null> {
  const container = (await projectContainers(project)).find((c) => c.service === target.service);
  if (!container) return null;
  const published = container.published.get(target.port);
  if (published) return { host: published.hostIp === "" || published.hostIp === "0.0.0.0" || published.hostIp === "::" ? "127.0.0.1" : published.hostIp, port: published.hostPort };
  const address = container.addresses[0];
  return address ? { host: address, port: target.port } : null;
}
