import { app } from "./app.ts";
import { Logger } from "./lib/logger.ts";
import { consumePipelineBatch } from "./pipeline/consumer.ts";
import { pipelineContext } from "./pipeline/context.ts";
import { runReaper } from "./pipeline/reaper.ts";

export { AgentConnection } from "./agents/agent-connection.ts";
export { LiveStreamSlots } from "./agents/live-stream-slots.ts";

export default {
  fetch: app.fetch,

  /** The JOBS queue (the preview pipeline) and its dead-letter queue. */
  queue(batch: MessageBatch<unknown>, env: Env): Promise<void> {
    return consumePipelineBatch(batch, env);
  },

  /** The reaper, every 5 minutes (wrangler.toml [triggers]). */
  async scheduled(controller: ScheduledController, env: Env): Promise<void> {
    const logger = new Logger("info", { cron: controller.cron });
    const report = await runReaper(await pipelineContext(env, logger));
    logger.info("reaper finished", { ...report });
  },
} satisfies ExportedHandler<Env>;
