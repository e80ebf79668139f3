import { and, eq, type SQL } from "drizzle-orm";
import type { AppContext } from "../app-env.ts";
import type { Db } from "../db/client.ts";
import { environments } from "../db/schema.ts";
import { newId } from "../lib/ids.ts";

/** The ready environments of a project, read in the same batch as a secret change. */
export function readyEnvironments(db: Db, projectId: string | SQL) {
  return db.select({ id: environments.id }).from(environments).where(and(eq(environments.projectId, projectId as string), eq(environments.status, "ready")));
}

/** A changed secret reaches running previews only by a redeploy: one `secret_updated` run per ready environment. */
export async function redeployReadyEnvironments(c: AppContext, ready: { id: string }[]): Promise<void> {
  if (ready.length === 0) return;
  const change = newId("auditLog");
  await c.env.JOBS.sendBatch(
    ready.map((environment) => ({
      body: {
        type: "run.requested",
        environment_id: environment.id,
        trigger: "secret_updated",
        triggered_by: c.get("auth").user.email,
        dedupe_key: `secret:${change}:${environment.id}`,
      },
    })),
  );
}
