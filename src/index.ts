import { app } from "./app.ts";
import { Logger } from "./lib/logger.ts";

export { AgentConnection } from "./agents/agent-connection.ts";

export default {
  fetch: app.fetch,

  async queue(batch: MessageBatch<unknown>): Promise<void> {
    const logger = new Logger("info", { queue: batch.queue });
    for (const message of batch.messages) {
      // No job types exist yet: a message this version does not understand is retried and then dead-lettered, never dropped.
      logger.warn("queue message not understood by this version", { message_id: message.id, attempts: message.attempts });
      if (batch.queue.endsWith("-dlq")) message.ack();
      else message.retry();
    }
  },

  async scheduled(controller: ScheduledController): Promise<void> {
    new Logger("info").info("scheduled tick", { cron: controller.cron, scheduled_time: new Date(controller.scheduledTime).toISOString() });
  },
} satisfies ExportedHandler<Env>;
