import type { JobChannel } from "./control-connection.ts";
import type { DockerTools } from "./docker.ts";

/** What a BUILD or DEPLOY executor gets from the agent (agent/src/agent.ts). */
export interface JobContext {
  job: JobChannel;
  role: "builder" | "preview";
  /** A line of a program's output into the job's log, with every secret of the command masked. */
  log(stream: "stdout" | "stderr", line: string): void;
  /** A line of the agent's own into the job's log ("[stagely] ..."). */
  note(text: string): void;
  /** Resolves when the job's log buffer has room again (a noisy program waits for Core). */
  room(): Promise<void>;
  /** Aborted by TERMINATE (the job ends as `terminated`). */
  signal: AbortSignal;
  /** An empty directory of the job's own, removed when the job ends. */
  workspace: string;
  /** Docker, compose and buildx as this machine has them now. */
  tools(): Promise<DockerTools>;
}

/** A job step that failed: `code` and `message` become the job's ERROR, `exitCode` its STATUS's. */
export class JobFailure extends Error {
  override readonly name = "JobFailure";
  readonly code: string;
  readonly exitCode: number | null;
  constructor(code: string, message: string, exitCode: number | null = null) {
    super(message);
    this.code = code;
    this.exitCode = exitCode;
  }
}

export const seconds = (startedAt: number) => Math.round((performance.now() - startedAt) / 10) / 100;
