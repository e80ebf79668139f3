import { afterEach, describe, expect, it } from "vitest";
import { openControlConnection, type ControlConnection, type JobChannel, type JobHandlers } from "../../agent/src/control-connection.ts";
import { MAX_LINE_CHARS, type BuildCommand, type DeployCommand } from "../../src/agents/protocol.ts";

// The agent's control connection (shared by the real agent and the simulator) against a test playing Core on the
// other end of a WebSocketPair: what it sends, what it refuses, what it resends.

type Frame = Record<string, unknown> & { type: string };

/** Core's side of one connection. */
class CoreEnd {
  readonly ws: WebSocket;
  readonly received: Frame[] = [];
  private cursor = 0;
  private wake: (() => void) | null = null;
  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.addEventListener("message", (event) => {
      this.received.push(JSON.parse(event.data as string) as Frame);
      this.wake?.();
    });
  }
  send(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }
  /** The next frame (after those already returned) matching `match`. */
  async next(match: (f: Frame) => boolean = () => true, timeoutMs = 3_000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.cursor < this.received.length) {
        const frame = this.received[this.cursor++]!;
        if (match(frame)) return frame;
      }
      if (Date.now() > deadline) throw new Error(`no matching frame; received ${JSON.stringify(this.received.map((f) => f.type))}`);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 50);
      });
    }
  }
  helloAck(heartbeatInterval = 30): void {
    this.send({ type: "HELLO_ACK", status: "connected", agent_id: AGENT_ID, heartbeat_interval: heartbeatInterval });
  }
}

const AGENT_ID = "agt_controlconn00001";
const TOKEN = `stg_agt_controlconn00001_${"a".repeat(64)}`;
const open: ControlConnection[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.stop()));
});

function start(handlers: Partial<JobHandlers> = {}) {
  const cores: CoreEnd[] = [];
  const jobs: { job: JobChannel; command: BuildCommand | DeployCommand }[] = [];
  let arrived: (() => void) | null = null;
  const connection = openControlConnection({
    coreUrl: "https://stagely.test",
    token: TOKEN,
    version: "1.1.0",
    log: () => {},
    systemInfo: () => ({ hostname: "vm", ip_address: "10.0.0.5", architecture: "amd64", os: "Ubuntu 24.04.1 LTS", docker_version: "27.3.1", compose_version: "2.29.1" }),
    load: () => ({ uptime_seconds: 5, load_average: [0.5, 0.4, 0.3], memory_usage: { total_mb: 4000, available_mb: 3000 }, disk_usage: { total_gb: 40, available_gb: 30 } }),
    handlers: { onJob: (job, command) => void jobs.push({ job, command }), onTerminate: () => {}, ...handlers },
    openSocket: async () => {
      const pair = new WebSocketPair();
      const [client, server] = [pair[0], pair[1]];
      server.accept();
      client.accept();
      cores.push(new CoreEnd(server));
      arrived?.();
      return client;
    },
  });
  open.push(connection);
  const core = async (index: number) => {
    while (cores.length <= index) await new Promise<void>((resolve) => (arrived = resolve));
    return cores[index]!;
  };
  return { connection, core, jobs };
}

const build = (jobId: string) => ({
  type: "BUILD",
  job_id: jobId,
  context: { repo_url: "https://github.com/acme/app", commit_hash: "abc1234", branch: "main", clone_token: null },
  build_config: { context_path: ".", dockerfile: "Dockerfile", target_image: "registry.local/app:1", platform: "linux/amd64" },
});

describe("the agent's control connection", () => {
  it("says HELLO with its id, version and system info (compose_version too), then heartbeats at Core's interval", async () => {
    const { core } = start();
    const first = await core(0);
    expect(await first.next()).toEqual({
      type: "HELLO",
      version: "1.1.0",
      agent_id: AGENT_ID,
      system_info: { hostname: "vm", ip_address: "10.0.0.5", architecture: "amd64", os: "Ubuntu 24.04.1 LTS", docker_version: "27.3.1", compose_version: "2.29.1" },
    });
    first.helloAck(0.05);
    const heartbeat = await first.next((f) => f.type === "HEARTBEAT");
    expect(heartbeat).toMatchObject({ uptime_seconds: 5, load_average: [0.5, 0.4, 0.3], memory_usage: { total_mb: 4000, available_mb: 3000 } });
  });

  it("refuses a command that does not validate with BAD_COMMAND for its job, and ignores message types it does not know", async () => {
    const { core, jobs } = start();
    const first = await core(0);
    first.helloAck();
    first.send({ type: "SOMETHING_NEWER", detail: 1 });
    first.send({ type: "BUILD", job_id: "job_badcommand01", context: { repo_url: "x" } });
    const error = await first.next((f) => f.type === "ERROR");
    expect(error).toMatchObject({ job_id: "job_badcommand01", code: "BAD_COMMAND" });
    expect(error.message).toMatch(/^invalid BUILD: /);
    first.send(build("job_goodcommand1"));
    first.send({ type: "PING" });
    await first.next((f) => f.type === "PONG");
    expect(jobs.map((j) => j.job.id)).toEqual(["job_goodcommand1"]);
    expect(first.received.filter((f) => f.type === "ERROR")).toHaveLength(1);
  });

  it("answers a duplicate command with the job's last STATUS instead of starting it again", async () => {
    const { core, jobs } = start({ onJob: (job) => job.report("running") });
    const first = await core(0);
    first.helloAck();
    first.send(build("job_duplicate001"));
    await first.next((f) => f.type === "STATUS");
    first.send(build("job_duplicate001"));
    expect(await first.next((f) => f.type === "STATUS")).toEqual({ type: "STATUS", job_id: "job_duplicate001", state: "running" });
    expect(jobs).toHaveLength(0);
  });

  it("splits embedded newlines and long lines, and sends a job's lines before its final STATUS", async () => {
    let channel!: JobChannel;
    const { core } = start({ onJob: (job) => void (channel = job) });
    const first = await core(0);
    first.helloAck();
    first.send(build("job_longlines01"));
    while (!channel) await new Promise((resolve) => setTimeout(resolve, 10));
    const long = "x".repeat(MAX_LINE_CHARS + 10);
    channel.log("stdout", `first\r\nsecond\n${long}`);
    channel.report("completed", { exit_code: 0, artifact_url: "registry.local/app@sha256:00" });
    const frames = [await first.next((f) => f.type === "LOG"), await first.next((f) => f.type === "STATUS")];
    const lines = (frames[0]!.lines as { seq: number; data: string }[]).map((l) => [l.seq, l.data.length > 20 ? l.data.length : l.data]);
    expect(lines).toEqual([[1, "first"], [2, "second"], [3, MAX_LINE_CHARS], [4, "xxxxxxxxxx"]]);
    expect(frames[1]).toMatchObject({ state: "completed", exit_code: 0 });
    expect(first.received.indexOf(frames[0]!)).toBeLessThan(first.received.indexOf(frames[1]!));
  });

  it("resends unacknowledged lines after a reconnect, then the ERROR and STATUS Core has not seen", async () => {
    let channel!: JobChannel;
    const { core, connection } = start({ onJob: (job) => void (channel = job) });
    const first = await core(0);
    first.helloAck();
    first.send(build("job_reconnect001"));
    while (!channel) await new Promise((resolve) => setTimeout(resolve, 10));
    channel.log("stdout", "one\ntwo\nthree");
    await first.next((f) => f.type === "LOG");
    first.send({ type: "LOG_ACK", job_id: "job_reconnect001", seq: 1 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    first.ws.close(4008, "missed heartbeats");
    // While the socket is down the job fails: its report waits for the next connection.
    channel.log("stderr", "four");
    channel.error("BUILD_FAILED", "step 2/2 failed");
    channel.report("failed", { exit_code: 2 });
    const second = await core(1);
    await second.next((f) => f.type === "HELLO");
    second.helloAck();
    const log = await second.next((f) => f.type === "LOG");
    expect((log.lines as { seq: number }[]).map((l) => l.seq)).toEqual([2, 3, 4]);
    expect(await second.next((f) => f.type !== "LOG")).toMatchObject({ type: "ERROR", job_id: "job_reconnect001", code: "BUILD_FAILED" });
    expect(await second.next()).toMatchObject({ type: "STATUS", state: "failed", exit_code: 2 });
    second.send({ type: "LOG_ACK", job_id: "job_reconnect001", seq: 4 });
    expect(await connection.settle(2_000)).toBe(true);
    expect(connection.stats()).toMatchObject({ connects: 2, unacked: 0, linesAcked: 4 });
  });

  it("drops a job's lines when Core says it does not know the job", async () => {
    let channel!: JobChannel;
    const { core, connection } = start({ onJob: (job) => void (channel = job) });
    const first = await core(0);
    first.helloAck();
    first.send(build("job_unknownjob01"));
    while (!channel) await new Promise((resolve) => setTimeout(resolve, 10));
    channel.log("stdout", "a\nb");
    await first.next((f) => f.type === "LOG");
    expect(connection.stats().unacked).toBe(2);
    first.send({ type: "ERROR", code: "UNKNOWN_JOB", message: "this agent has no job with that id", job_id: "job_unknownjob01" });
    expect(await connection.settle(2_000)).toBe(true);
  });

  it("holds producers back while 20,000 lines wait for an acknowledgement", async () => {
    let channel!: JobChannel;
    const { core, connection } = start({ onJob: (job) => void (channel = job) });
    const first = await core(0);
    first.helloAck();
    first.send(build("job_backpressure"));
    while (!channel) await new Promise((resolve) => setTimeout(resolve, 10));
    for (let i = 0; i < 20_001; i++) channel.log("stdout", `line ${i}`);
    let roomy = false;
    const room = connection.room().then(() => (roomy = true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(roomy).toBe(false);
    first.send({ type: "LOG_ACK", job_id: "job_backpressure", seq: 10_000 });
    await room;
    expect(connection.stats().unacked).toBe(10_001);
  });

  it("stops for good when Core revokes the agent (4003), without reconnecting", async () => {
    const { core, connection } = start();
    const first = await core(0);
    first.helloAck();
    first.ws.close(4003, "agent revoked");
    expect(await connection.done).toEqual({ reason: "refused", code: 4003 });
  });
});
