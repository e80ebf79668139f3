import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as z from "zod";
import { statusMessage } from "../../src/agents/protocol.ts";
import type { JobKind } from "./control-connection.ts";

const recordSchema = z.object({
  id: z.string(),
  kind: z.enum(["build", "deploy"]),
  lastStatus: statusMessage.nullable(),
});
export type JobRecord = z.infer<typeof recordSchema>;

/**
 * What the agent remembers about its jobs across a restart (systemd restarts it after a crash): one small JSON file
 * per job under `<work dir>/jobs-state/`, written when the job is accepted and at each report. Commands are not
 * stored (they carry tokens and secrets): a job that was running when the agent died is reported as interrupted.
 */
export class JobStore {
  private readonly dir: string;

  constructor(workDir: string) {
    this.dir = join(workDir, "jobs-state");
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  save(id: string, kind: JobKind, lastStatus: JobRecord["lastStatus"]): void {
    const file = join(this.dir, `${encodeURIComponent(id)}.json`);
    writeFileSync(`${file}.tmp`, JSON.stringify({ id, kind, lastStatus } satisfies JobRecord));
    renameSync(`${file}.tmp`, file);
  }

  /** Every readable record (a damaged file is skipped). */
  load(): JobRecord[] {
    const records: JobRecord[] = [];
    for (const name of readdirSync(this.dir)) {
      if (!name.endsWith(".json")) continue;
      try {
        records.push(recordSchema.parse(JSON.parse(readFileSync(join(this.dir, name), "utf8"))));
      } catch {
        // Written half when the machine lost power: nothing to report about it.
      }
    }
    return records;
  }
}
