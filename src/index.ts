import { app } from "./app.ts";
import { getConfig } from "./config.ts";
import { Logger } from "./lib/logger.ts";
import { consumePipelineBatch } from "./pipeline/consumer.ts";
import { pipelineContext } from "./pipeline/context.ts";
import { runReaper } from "./pipeline/reaper.ts";
import { previewApp } from "./preview/app.ts";
import { previewHostOf } from "./preview/hosts.ts";

export { AgentConnection } from "./agents/agent-connection.ts";
export { LiveStreamSlots } from "./agents/live-stream-slots.ts";
export { PreviewHost } from "./preview/host.ts";
export { PreviewTunnel } from "./preview/tunnel.ts";

/** True for a request to a preview host (`*.<PREVIEW_DOMAIN>`); a misconfigured Worker leaves it to the API to report. */
function isPreviewRequest(request: Request, env: Env): boolean {
  let config;
  try {
    config = getConfig(env);
  } catch {
    return false;
  }
  return previewHostOf(new URL(request.url).hostname, config) !== undefined;
}

export default {
  /** Preview hosts go to the preview proxy before any API middleware; everything else is the API. */
  fetch(request: Request, env: Env, ctx: ExecutionContext): Response | Promise<Response> {
    return isPreviewRequest(request, env) ? previewApp.fetch(request, env, ctx) : app.fetch(request, env, ctx);
  },

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
