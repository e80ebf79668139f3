import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { EXIT_REFUSED } from "../../agent/src/agent.ts";
import { AGENT_BUNDLE_ASSET } from "../../src/agents/agent-release.ts";
import type { AgentConfig } from "../../src/providers/cloud-init.ts";
import { ASSETS_DIR } from "../build/assets.ts";

/** The bundle VMs download (built into build/assets by `npm run build:assets`, which vitest and wrangler run first). */
export const AGENT_BUNDLE_PATH = join(ASSETS_DIR, AGENT_BUNDLE_ASSET);
/** The agent's source entry: always current, run with Node's type stripping. */
const AGENT_SOURCE_PATH = join(import.meta.dirname, "..", "..", "agent", "src", "main.ts");

export interface AgentProcessOptions {
  config: AgentConfig;
  /** The simulated VM's folder: its agent.json (0600) and the agent's work directory. */
  dir: string;
  /** Compose project names start with it, so VMs sharing this machine's engine keep apart. */
  projectPrefix: string;
  /** Which agent to run (default: the source). */
  entry?: string;
  healthTimeoutSeconds?: number;
  /** Wait before restarting a crashed agent (systemd's RestartSec; default 1 s). */
  restartDelayMs?: number;
  /** Each line the agent prints. */
  log: (line: string) => void;
}

export interface AgentProcess {
  /** The pid of the agent running now (a restart changes it). */
  pid(): number | undefined;
  restarts(): number;
  /** Everything the agent printed, every run of it. */
  output(): string[];
  /** Resolves with its exit code when the agent exits for good (0 or 3, or stop()). */
  exited: Promise<number>;
  /** SIGTERM, as `systemctl stop` sends; SIGKILL after 10 s. */
  stop(): Promise<void>;
}

/**
 * Runs the real agent the way cloud-init's systemd unit does: `node <agent> --config agent.json`, restarted after a
 * crash (any exit but 0 and 3, as Restart=on-failure with RestartPreventExitStatus=3), and with whatever the agent
 * started killed when it ends (systemd kills the unit's whole control group).
 */
export function startAgentProcess(options: AgentProcessOptions): AgentProcess {
  const configPath = join(options.dir, "agent.json");
  const workDir = join(options.dir, "work");
  mkdirSync(workDir, { recursive: true, mode: 0o700 });
  writeFileSync(configPath, `${JSON.stringify(options.config)}\n`, { mode: 0o600 });
  const args = [
    options.entry ?? AGENT_SOURCE_PATH,
    "--config", configPath,
    "--work-dir", workDir,
    "--project-prefix", options.projectPrefix,
    "--health-timeout", String(options.healthTimeoutSeconds ?? 300),
  ];
  const output: string[] = [];
  let child: ChildProcess | undefined;
  let restarts = 0;
  let stopping = false;
  let resolveExited!: (code: number) => void;
  const exited = new Promise<number>((resolve) => (resolveExited = resolve));

  const killGroup = (pid: number | undefined) => {
    try {
      if (pid) process.kill(-pid, "SIGKILL");
    } catch {
      // nothing left of it
    }
  };

  function start(): void {
    // Its own process group: the whole group goes when it ends, as a systemd unit's control group does.
    const current = spawn(process.execPath, args, { detached: true, stdio: ["ignore", "pipe", "pipe"] });
    child = current;
    for (const stream of [current.stdout!, current.stderr!]) {
      createInterface({ input: stream }).on("line", (line) => {
        output.push(line);
        options.log(line);
      });
    }
    current.on("exit", (code, signal) => {
      killGroup(current.pid);
      if (stopping) return resolveExited(code ?? 0);
      if (code === 0 || code === EXIT_REFUSED) return resolveExited(code);
      restarts++;
      options.log(`[agent-process] the agent ended (${signal ?? `exit code ${code}`}); restarting in ${options.restartDelayMs ?? 1000} ms`);
      setTimeout(() => {
        if (!stopping) start();
      }, options.restartDelayMs ?? 1000);
    });
  }

  start();
  return {
    pid: () => (child?.exitCode === null && child.signalCode === null ? child.pid : undefined),
    restarts: () => restarts,
    output: () => output,
    exited,
    async stop() {
      if (!stopping) {
        stopping = true;
        const current = child;
        if (current && current.exitCode === null && current.signalCode === null) {
          current.kill("SIGTERM");
          const timer = setTimeout(() => killGroup(current.pid), 10_000);
          await exited;
          clearTimeout(timer);
        } else resolveExited(current?.exitCode ?? 0);
      }
      await exited;
    },
  };
}
