import { sql } from "drizzle-orm";
import { Hono } from "hono/tiny";
import { dbOf, type AppEnv } from "../app-env.ts";
import { ApiError } from "../lib/errors.ts";

export const healthRoutes = new Hono<AppEnv>()
  /** The process answers; touches nothing else. */
  .get("/health", (c) => c.json({ status: "ok" }))
  /** Ready to serve: configuration valid and one database round trip succeeds. */
  .get("/ready", async (c) => {
    const db = dbOf(c);
    try {
      await db.execute(sql`SELECT 1`);
    } catch (error) {
      c.get("logger").warn("readiness check failed", { error: error instanceof Error ? { name: error.name } : {} });
      throw new ApiError("SERVICE_UNAVAILABLE", "database is unreachable");
    }
    return c.json({ status: "ready", database: "ok" });
  });
