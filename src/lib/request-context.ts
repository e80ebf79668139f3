import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app-env.ts";
import { Logger, type LogLevel } from "./logger.ts";

const REQUEST_ID_HEADER = "X-Request-Id";
const acceptableIncomingId = /^[A-Za-z0-9._-]{8,64}$/;
const logLevels = new Set(["debug", "info", "warn", "error"]);

/** Gives every request an id (kept from a well-formed incoming header), a logger bound to it, and one access log line. */
export const requestContext = createMiddleware<AppEnv>(async (c, next) => {
  const incoming = c.req.header(REQUEST_ID_HEADER);
  const requestId = incoming && acceptableIncomingId.test(incoming) ? incoming : `req_${crypto.randomUUID().replaceAll("-", "")}`;
  const level = logLevels.has(c.env.LOG_LEVEL) ? (c.env.LOG_LEVEL as LogLevel) : "info";
  const logger = new Logger(level, { request_id: requestId });
  c.set("requestId", requestId);
  c.set("logger", logger);
  const started = Date.now();
  await next();
  c.header(REQUEST_ID_HEADER, requestId);
  logger.info("request", {
    method: c.req.method,
    path: new URL(c.req.url).pathname,
    status: c.res.status,
    duration_ms: Date.now() - started,
  });
});
