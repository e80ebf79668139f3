// The agent gateway under `wrangler dev`, driven by simulated agents (scripts/agent-sim):
//   (1) command latency: a DEPLOY queued for an online agent (dev route → Durable Object → WebSocket) until the agent has it,
//       next to what a bare request to wrangler dev costs (GET /health);
//   (2) log ingestion: one agent streaming as fast as it can; lines/s stored, inserts per 1,000 lines, and the CPU time
//       spent per 1,000 lines by workerd and by this process (simulator + local database server), which unlike lines/s
//       can be compared between runs on a busy machine;
//   (3) many agents: connected agents with 30 s heartbeats, level by level, with memory and database writes per minute.
// Sizes come from the environment (bench.ts has no flags for them):
//   BENCH_COMMANDS (default 300), BENCH_LOG_LINES (default 100000), BENCH_AGENTS (levels, default "250,500,1000,2000"),
//   BENCH_AGENT_WINDOW_SECONDS (measurement window per level, default 75).
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { getSql } from "../../../src/db/client.ts";
import type { CoreMessage } from "../../../src/agents/protocol.ts";
import { startSimulatedAgent, type SimulatedAgent } from "../../agent-sim/agent.ts";
import type { Stack } from "../../lib/stack.ts";
import type { BenchScenario } from "../types.ts";

export interface DevAgent {
  agent_id: string;
  token: string;
  build_job_id: string | null;
  environment_id: string;
}

const envNumber = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const quiet = () => {};

export async function createAgent(target: Stack, role: "builder" | "preview"): Promise<DevAgent> {
  const response = await fetch(`${target.apiUrl}/v1/dev/agents`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${target.apiToken}` },
    body: JSON.stringify({ role }),
  });
  if (response.status !== 201) throw new Error(`POST /v1/dev/agents answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as DevAgent;
}

export async function sendCommand(target: Stack, agentId: string, command: Record<string, unknown>): Promise<void> {
  const response = await fetch(`${target.apiUrl}/v1/dev/agents/${agentId}/commands`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${target.apiToken}` },
    body: JSON.stringify(command),
  });
  if (response.status !== 202) throw new Error(`command answered ${response.status}: ${await response.text()}`);
}

async function agentState(target: Stack, agentId: string): Promise<{ log_inserts: number; log_lines_stored: number }> {
  const response = await fetch(`${target.apiUrl}/v1/dev/agents/${agentId}`, { headers: { authorization: `Bearer ${target.apiToken}` } });
  return (await response.json()) as { log_inserts: number; log_lines_stored: number };
}

/** Resolves on the first message from Core that `match` accepts. */
function waiter() {
  const waiting: { match: (m: CoreMessage) => boolean; resolve: () => void }[] = [];
  return {
    onMessage(message: CoreMessage) {
      for (const w of [...waiting]) {
        if (w.match(message)) {
          waiting.splice(waiting.indexOf(w), 1);
          w.resolve();
        }
      }
    },
    next(match: (m: CoreMessage) => boolean, timeoutMs = 60_000): Promise<void> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("timed out waiting for a message from Core")), timeoutMs);
        waiting.push({ match, resolve: () => (clearTimeout(timer), resolve()) });
      });
    },
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** The workerd process serving the API on `port`, or 0 if not found. */
function workerdPid(port: number): number {
  const out = execFileSync("ss", ["-ltnpH", `sport = :${port}`], { encoding: "utf8" });
  return Number(/pid=(\d+)/.exec(out)?.[1] ?? 0);
}

/** The pids of the process group of `pid` (wrangler dev's: wrangler, its workerd processes, esbuild). */
function processGroup(pid: number): number[] {
  const pgid = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[2];
  return execFileSync("ps", ["-o", "pid=", "-g", pgid!], { encoding: "utf8" }).split("\n").map(Number).filter(Boolean);
}

/**
 * CPU time (ms, user + system, all threads) used by the workerd processes of wrangler dev (the Worker and its
 * Durable Objects, and the dev proxy in front of them): unlike lines/s it hardly depends on what else the machine
 * is doing, so it compares runs on a busy machine.
 */
function workerdCpuMs(port: number): number {
  const pid = workerdPid(port);
  if (!pid) return 0;
  const ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }));
  let ticks = 0;
  for (const p of processGroup(pid)) {
    try {
      const [name, rest] = readFileSync(`/proc/${p}/stat`, "utf8").split(") ");
      if (!name!.endsWith("(workerd")) continue;
      const fields = rest!.split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // exited meanwhile
    }
  }
  return (ticks * 1000) / ticksPerSecond;
}

/** RSS in MiB of the workerd process serving the API and of its whole process group (wrangler, workerd, esbuild). */
function workerMemory(port: number): { workerd_mb: number; wrangler_group_mb: number } {
  const pid = workerdPid(port);
  if (!pid) return { workerd_mb: 0, wrangler_group_mb: 0 };
  const rssOf = (p: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, "utf8"))?.[1] ?? 0) / 1024;
  let total = 0;
  for (const p of processGroup(pid)) {
    try {
      total += rssOf(p);
    } catch {
      // exited meanwhile
    }
  }
  return { workerd_mb: Math.round(rssOf(pid)), wrangler_group_mb: Math.round(total) };
}

/**
 * A connected agent that says HELLO and otherwise only listens: the latency measurement is then the delivery path
 * alone, not the agent's STATUS reports and the queue traffic they cause (whose consumer arrives with the pipeline).
 */
/** Node's WebSocket (undici) takes headers; the Workers types in this project do not know that. */
const Socket = WebSocket as unknown as new (url: string, init: { headers: Record<string, string> }) => WebSocket;

/**
 * The n-th simulated VM's own address. Agent connects are limited per client IP (wrangler.toml), and in production
 * every VM has its own; wrangler dev takes CF-Connecting-IP from the request, so each simulated agent sends one.
 */
const vmAddress = (n: number) => `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;

function listeningAgent(target: Stack, agent: DevAgent, onMessage: (m: CoreMessage) => void): { stop(): void } {
  const ws = new Socket(`${target.apiUrl.replace(/^http/, "ws")}/v1/agent/connect`, { headers: { Authorization: `Bearer ${agent.token}` } });
  ws.addEventListener("open", () =>
    ws.send(
      JSON.stringify({
        type: "HELLO",
        version: "1.0.0",
        agent_id: agent.agent_id,
        system_info: { hostname: "bench", ip_address: "127.0.0.1", architecture: "amd64", os: "linux" },
      }),
    ),
  );
  ws.addEventListener("message", (event) => onMessage(JSON.parse(String(event.data)) as CoreMessage));
  return { stop: () => ws.close() };
}

async function commandLatency(target: Stack, count: number, log: (line: string) => void) {
  const agent = await createAgent(target, "preview");
  const messages = waiter();
  const listener = listeningAgent(target, agent, messages.onMessage);
  try {
    await messages.next((m) => m.type === "HELLO_ACK");
    log(`command latency: ${count} DEPLOY commands to one online agent, one at a time ...`);
    const latencies: number[] = [];
    for (let i = 0; i < count + 20; i++) {
      const jobId = `dep_bench${String(i).padStart(8, "0")}`;
      const received = messages.next((m) => m.type === "DEPLOY" && m.job_id === jobId);
      const started = performance.now();
      await sendCommand(target, agent.agent_id, { type: "DEPLOY", job_id: jobId, images: { web: "registry.local/web:1" }, compose_file: "services: {}\n" });
      await received;
      if (i >= 20) latencies.push(performance.now() - started); // the first 20 warm up
    }
    latencies.sort((a, b) => a - b);
    // What one HTTP request to wrangler dev costs by itself: the command's trip starts with one (the dev route).
    const baseline: number[] = [];
    for (let i = 0; i < 200; i++) {
      const started = performance.now();
      await (await fetch(`${target.apiUrl}/health`)).arrayBuffer();
      baseline.push(performance.now() - started);
    }
    baseline.sort((a, b) => a - b);
    return {
      scenario: "command → online agent",
      commands: count,
      p50_ms: Number(percentile(latencies, 50).toFixed(2)),
      p99_ms: Number(percentile(latencies, 99).toFixed(2)),
      max_ms: Number(latencies.at(-1)!.toFixed(2)),
      http_baseline_p50_ms: Number(percentile(baseline, 50).toFixed(2)),
    };
  } finally {
    listener.stop();
  }
}

async function logIngestion(target: Stack, lines: number, log: (line: string) => void) {
  const agent = await createAgent(target, "builder");
  const jobId = agent.build_job_id!;
  const messages = waiter();
  const sim = startSimulatedAgent({ coreUrl: target.apiUrl, token: agent.token, speed: Infinity, linesPerBuild: lines, log: quiet, onMessage: messages.onMessage });
  try {
    await messages.next((m) => m.type === "HELLO_ACK");
    await sleep(500); // the HELLO's database write
    log(`log ingestion: one agent streams ${lines} lines as fast as it can ...`);
    await target.resetDbStats();
    const allStored = messages.next((m) => m.type === "LOG_ACK" && m.seq === lines, 600_000);
    const port = Number(new URL(target.apiUrl).port);
    const cpuBefore = workerdCpuMs(port);
    const ownBefore = process.cpuUsage();
    const started = performance.now();
    await sendCommand(target, agent.agent_id, {
      type: "BUILD",
      job_id: jobId,
      context: { repo_url: "https://github.com/stagely-dev/app", commit_hash: "0000000", branch: "bench" },
      build_config: { context_path: ".", dockerfile: "Dockerfile", target_image: "registry.local/app:bench", platform: "linux/amd64" },
    });
    await allStored;
    const seconds = (performance.now() - started) / 1000;
    const cpuMs = workerdCpuMs(port) - cpuBefore;
    const own = process.cpuUsage(ownBefore);
    const trips = (await target.dbStats()).round_trips;
    const state = await agentState(target, agent.agent_id);
    const sql = getSql(target.local.databaseUrl(target.database));
    const [counted] = (await sql.query("SELECT count(*)::int AS n, count(DISTINCT seq)::int AS d FROM build_logs WHERE build_job_id = $1", [jobId])) as {
      n: number;
      d: number;
    }[];
    return {
      scenario: "log ingestion, 1 agent",
      lines,
      seconds: Number(seconds.toFixed(2)),
      lines_per_s: Math.round(lines / seconds),
      inserts: state.log_inserts,
      inserts_per_1000_lines: Number(((state.log_inserts / lines) * 1000).toFixed(2)),
      workerd_cpu_ms_per_1000_lines: Number(((cpuMs / lines) * 1000).toFixed(1)),
      // The simulated agent and the local database server both run in this process.
      bench_process_cpu_ms_per_1000_lines: Number((((own.user + own.system) / 1000 / lines) * 1000).toFixed(1)),
      db_round_trips_per_1000_lines: Number(((trips / lines) * 1000).toFixed(2)),
      rows_stored: counted!.n,
      distinct_seqs: counted!.d,
    };
  } finally {
    await sim.stop();
  }
}

async function manyAgents(
  target: Stack,
  levels: number[],
  windowSeconds: number,
  log: (line: string) => void,
  keep: (row: Record<string, unknown>) => void,
): Promise<void> {
  const port = Number(new URL(target.apiUrl).port);
  const sims: { sim: SimulatedAgent; heartbeats: number; connected: boolean }[] = [];
  try {
    for (const level of levels) {
      log(`many agents: connecting ${level - sims.length} more (${level} in all) with 30 s heartbeats ...`);
      const rampStarted = performance.now();
      const missing = level - sims.length;
      let next = 0;
      let failure: string | null = null;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < missing && !failure) {
            next++;
            let agent: DevAgent;
            try {
              agent = await createAgent(target, "preview");
            } catch (error) {
              failure = error instanceof Error ? error.message.split("\n")[0]!.slice(0, 200) : String(error);
              return;
            }
            const entry = { sim: undefined as unknown as SimulatedAgent, heartbeats: 0, connected: false };
            const address = vmAddress(sims.length + 1);
            entry.sim = startSimulatedAgent({
              coreUrl: target.apiUrl,
              token: agent.token,
              openSocket: async (url, headers) => new Socket(url, { headers: { ...headers, "CF-Connecting-IP": address } }),
              log: quiet,
              onMessage: (m) => {
                if (m.type === "HELLO_ACK") entry.connected = true;
                if (m.type === "HEARTBEAT_ACK") entry.heartbeats++;
              },
            });
            sims.push(entry);
          }
        }),
      );
      if (failure) {
        log(`many agents: the Worker failed while connecting agent ${sims.length + 1}: ${failure}`);
        keep({ scenario: "many agents (30 s heartbeats)", agents: level, connected: sims.filter((s) => s.connected).length, failed_at: sims.length + 1, error: failure, sustained: false });
        break;
      }
      const deadline = Date.now() + 120_000;
      while (sims.some((s) => !s.connected) && Date.now() < deadline) await sleep(250);
      const connected = sims.filter((s) => s.connected).length;
      const rampSeconds = (performance.now() - rampStarted) / 1000;
      await sleep(3_000); // the HELLOs' database writes
      const connectsBefore = sims.reduce((n, s) => n + s.sim.stats().connects, 0);
      for (const s of sims) s.heartbeats = 0;
      await target.resetDbStats();
      log(`many agents: ${connected}/${level} connected in ${rampSeconds.toFixed(1)} s; measuring for ${windowSeconds} s ...`);
      await sleep(windowSeconds * 1000);
      const trips = (await target.dbStats()).round_trips;
      const reconnects = sims.reduce((n, s) => n + s.sim.stats().connects, 0) - connectsBefore;
      // Heartbeats sent at least 10 s before the window closes must all be answered within it.
      const expectedBeats = Math.floor((windowSeconds - 10) / 30);
      const lagging = sims.filter((s) => s.heartbeats < expectedBeats).length;
      const sustained = connected === level && reconnects === 0 && lagging === 0;
      keep({
        scenario: "many agents (30 s heartbeats)",
        agents: level,
        connected,
        ramp_s: Number(rampSeconds.toFixed(1)),
        reconnects,
        agents_missing_heartbeat_acks: lagging,
        db_writes_per_min: Math.round((trips / windowSeconds) * 60),
        ...workerMemory(port),
        sim_process_mb: Math.round(process.memoryUsage().rss / 2 ** 20),
        sustained,
      });
      if (!sustained) break;
    }
  } finally {
    await Promise.all(sims.map((s) => s.sim.stop()));
  }
}

export const agentsScenario: BenchScenario = {
  name: "agents",
  async run({ target, log }) {
    const rows: Record<string, unknown>[] = [];
    // Each result is also logged as it comes: the many-agents levels take minutes.
    const keep = (row: Record<string, unknown>) => {
      log(`result ${JSON.stringify(row)}`);
      rows.push(row);
    };
    keep(await commandLatency(target, envNumber("BENCH_COMMANDS", 300), log));
    keep(await logIngestion(target, envNumber("BENCH_LOG_LINES", 100_000), log));
    const levels = (process.env.BENCH_AGENTS ?? "250,500,1000,2000").split(",").map(Number).filter((n) => n > 0);
    await manyAgents(target, levels, envNumber("BENCH_AGENT_WINDOW_SECONDS", 75), log, keep);
    return rows;
  },
};
