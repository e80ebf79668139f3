import { readFileSync, statfsSync } from "node:fs";
import { hostname, loadavg, networkInterfaces, totalmem, freemem } from "node:os";
import type { MachineLoad, SystemInfo } from "./control-connection.ts";
import { composeVersionLabel, type DockerTools } from "./docker.ts";

const MB = 2 ** 20;
const GB = 2 ** 30;
const round1 = (n: number) => Math.round(n * 10) / 10;
const round2 = (n: number) => Math.round(n * 100) / 100;

/** Ubuntu's "Ubuntu 24.04.1 LTS", from /etc/os-release. */
function osName(): string {
  try {
    const pretty = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync("/etc/os-release", "utf8"))?.[1];
    if (pretty) return pretty;
  } catch {
    // not Linux, or a minimal image
  }
  return `${process.platform}`;
}

/** The first non-internal IPv4 address (the VM's private address). */
function ipAddress(): string {
  for (const addresses of Object.values(networkInterfaces())) {
    const found = addresses?.find((a) => a.family === "IPv4" && !a.internal);
    if (found) return found.address;
  }
  return "127.0.0.1";
}

/** HELLO's system_info. */
export function systemInfo(tools: DockerTools): SystemInfo {
  return {
    hostname: hostname(),
    ip_address: ipAddress(),
    architecture: process.arch === "x64" ? "amd64" : process.arch,
    os: osName(),
    docker_version: tools.engineVersion,
    compose_version: composeVersionLabel(tools),
  };
}

/** MemAvailable (what can be used without swapping), which free memory alone understates. */
function availableMemory(): number {
  try {
    const kb = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync("/proc/meminfo", "utf8"))?.[1];
    if (kb) return Number(kb) * 1024;
  } catch {
    // not Linux
  }
  return freemem();
}

/** A heartbeat's figures: load, memory, and the disk holding the work directory (where images and checkouts go). */
export function machineLoad(workDir: string): MachineLoad {
  const [one = 0, five = 0, fifteen = 0] = loadavg();
  let disk = { total_gb: 0, available_gb: 0 };
  try {
    const stats = statfsSync(workDir);
    disk = { total_gb: round1((stats.blocks * stats.bsize) / GB), available_gb: round1((stats.bavail * stats.bsize) / GB) };
  } catch {
    // the work directory vanished: reported as unknown (0)
  }
  return {
    uptime_seconds: Math.round(process.uptime()),
    load_average: [round2(one), round2(five), round2(fifteen)],
    memory_usage: { total_mb: Math.round(totalmem() / MB), available_mb: Math.round(availableMemory() / MB) },
    disk_usage: disk,
  };
}
