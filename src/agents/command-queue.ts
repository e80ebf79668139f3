import type { AgentCommand } from "./protocol.ts";

export interface Sealer {
  seal(plaintext: string): Promise<string>;
  open(sealed: string): Promise<string>;
}

/**
 * Commands for the agent, in order, in the Durable Object's storage until the agent acknowledges them: a STATUS for
 * a job acknowledges that job's BUILD/DEPLOY; a STATUS `terminated` acknowledges TERMINATE. Each command is sent
 * once per connection and again on the next connection until acknowledged. Bodies are sealed (AES-GCM): BUILD and
 * DEPLOY carry clone tokens, registry passwords and secret values.
 */
export class CommandQueue {
  private readonly sql: SqlStorage;
  private readonly sealer: Sealer;

  constructor(sql: SqlStorage, sealer: Sealer) {
    this.sql = sql;
    this.sealer = sealer;
    sql.exec(`CREATE TABLE IF NOT EXISTS commands (
      id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, job_id TEXT, sealed TEXT NOT NULL, sent_on TEXT)`);
  }

  /** Seals the command; `store` runs after sealing so the caller can keep insertion in call order. */
  async seal(command: AgentCommand): Promise<{ type: string; jobId: string | null; sealed: string }> {
    const jobId = command.type === "TERMINATE" ? null : command.job_id;
    return { type: command.type, jobId, sealed: await this.sealer.seal(JSON.stringify(command)) };
  }

  store(sealed: { type: string; jobId: string | null; sealed: string }): number {
    return this.sql
      .exec<{ id: number }>("INSERT INTO commands (type, job_id, sealed) VALUES (?, ?, ?) RETURNING id", sealed.type, sealed.jobId, sealed.sealed)
      .one().id;
  }

  /** Commands not yet sent on this connection, oldest first. */
  async unsentOn(connectionId: string): Promise<{ id: number; command: AgentCommand }[]> {
    const rows = this.sql
      .exec<{ id: number; sealed: string }>("SELECT id, sealed FROM commands WHERE sent_on IS NOT ? ORDER BY id", connectionId)
      .toArray();
    const out = [];
    for (const row of rows) out.push({ id: row.id, command: JSON.parse(await this.sealer.open(row.sealed)) as AgentCommand });
    return out;
  }

  markSent(id: number, connectionId: string): void {
    this.sql.exec("UPDATE commands SET sent_on = ? WHERE id = ?", connectionId, id);
  }

  acknowledgeJob(jobId: string): void {
    this.sql.exec("DELETE FROM commands WHERE job_id = ?", jobId);
  }

  acknowledgeTerminate(): void {
    this.sql.exec("DELETE FROM commands WHERE type = 'TERMINATE'");
  }

  count(): number {
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM commands").one().n;
  }

  clear(): void {
    this.sql.exec("DELETE FROM commands");
  }
}
