import * as z from "zod";
import { jobStates, serviceReport } from "./protocol.ts";

/**
 * Messages the agent gateway puts on the JOBS queue for the pipeline. Each is sent once per state change that
 * actually happened (a replayed agent report sends nothing); consumers must still be idempotent (queues deliver
 * at least once).
 */

/** A build job moved to a final state: the conditional update that did it changed a row. */
export const buildJobFinishedEvent = z.object({
  type: z.literal("build_job.finished"),
  job_id: z.string(),
  status: z.enum(["completed", "failed", "cancelled"]),
});

/** A preview agent reported on a DEPLOY (a new state for that deploy job). */
export const environmentDeployReportedEvent = z.object({
  type: z.literal("environment.deploy_reported"),
  environment_id: z.string(),
  job_id: z.string(),
  state: z.enum(jobStates),
  services: z.array(serviceReport),
  /** The deploy's last log lines (masked), sent with a failure so the environment can say why. */
  last_lines: z.array(z.string()).default([]),
});

export const agentJobEvent = z.discriminatedUnion("type", [buildJobFinishedEvent, environmentDeployReportedEvent]);

export type BuildJobFinishedEvent = z.infer<typeof buildJobFinishedEvent>;
export type EnvironmentDeployReportedEvent = z.infer<typeof environmentDeployReportedEvent>;
export type AgentJobEvent = z.infer<typeof agentJobEvent>;
