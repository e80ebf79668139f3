import type { JobLogLine } from "./job-logs.ts";
import { utf8Length } from "./protocol.ts";

/** How much of a job's log is accepted (MAX_LOG_LINES_PER_JOB, MAX_LOG_BYTES_PER_JOB): stored plus buffered lines. */
export interface LogLimits {
  maxLines: number;
  maxBytes: number;
}

export interface AddResult {
  /** Lines not seen before, now buffered, in seq order. */
  fresh: JobLogLine[];
  /** Lines not seen before that were refused because the job reached its limits. */
  refused: number;
}

interface PendingLine {
  line: JobLogLine;
  /** The journal row the line was written with. */
  frame: number;
  bytes: number;
  /** The generation of the masker applied to the line (-1: read back from the journal, masked by an earlier one). */
  maskedBy: number;
  /** Handed to an insert in flight (take), so a concurrent insert takes other lines. */
  taken: boolean;
}

/** A masker and its generation: each reload (new or changed secrets) is a new generation. */
export interface MaskerGeneration {
  generation: number;
  mask: (text: string) => string;
}

interface JobLog {
  /** The acknowledgement cursor: every line 1..acked is stored. */
  acked: number;
  /** Lines (and their UTF-8 bytes) stored so far, for the limits. */
  storedLines: number;
  storedBytes: number;
  pending: Map<number, PendingLine>;
  pendingBytes: number;
  /** Of the pending lines, those taken by inserts in flight. */
  takenLines: number;
  takenBytes: number;
  /** Stored above a gap: the cursor moves over them once the gap fills. */
  ahead: Set<number>;
}

/**
 * Log lines received from the agent and not yet in Postgres, plus each job's acknowledgement cursor.
 *
 * The lines live in memory, and each batch of fresh lines is also written to the Durable Object's storage as one
 * journal row (one SQLite write per LOG frame, not one per line) so that an eviction or a restart loses nothing:
 * the journal is read back on the next wake. A journal row is deleted once all its lines are stored. The cursor and
 * the job's stored totals are written with each flush. Lines stored above a gap are remembered in memory only: if
 * that is lost, the agent resends them (they were never acknowledged) and the insert skips them.
 */
export class LogBuffer {
  private readonly storage: DurableObjectStorage;
  private readonly sql: SqlStorage;
  private state: Map<string, JobLog> | null = null;
  /** Journal row id → how many of its lines are still buffered. */
  private readonly frames = new Map<number, number>();

  constructor(storage: DurableObjectStorage) {
    this.storage = storage;
    const sql = (this.sql = storage.sql);
    sql.exec("CREATE TABLE IF NOT EXISTS log_journal (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, lines TEXT NOT NULL)");
    sql.exec(`CREATE TABLE IF NOT EXISTS log_jobs (
      job_id TEXT PRIMARY KEY, acked_seq INTEGER NOT NULL, stored_lines INTEGER NOT NULL, stored_bytes INTEGER NOT NULL)`);
  }

  ackedSeq(jobId: string): number {
    return this.jobs().get(jobId)?.acked ?? 0;
  }

  /**
   * Buffers the lines not seen before (neither stored nor buffered) and returns them in seq order; lines beyond the
   * job's limits are refused (counted, not kept).
   */
  add(jobId: string, lines: readonly JobLogLine[], limits: LogLimits, maskedBy: number): AddResult {
    const job = this.job(jobId);
    let total = job.storedLines + job.pending.size;
    let bytes = job.storedBytes + job.pendingBytes;
    const fresh: { line: JobLogLine; bytes: number }[] = [];
    const seen = new Set<number>();
    let refused = 0;
    for (const line of lines) {
      if (line.seq <= job.acked || job.pending.has(line.seq) || job.ahead.has(line.seq) || seen.has(line.seq)) continue;
      seen.add(line.seq);
      const size = utf8Length(line.line);
      if (total + 1 > limits.maxLines || bytes + size > limits.maxBytes) {
        refused++;
        continue;
      }
      total++;
      bytes += size;
      fresh.push({ line, bytes: size });
    }
    if (fresh.length === 0) return { fresh: [], refused };
    const frame = this.sql
      .exec<{ id: number }>("INSERT INTO log_journal (job_id, lines) VALUES (?, ?) RETURNING id", jobId, JSON.stringify(fresh.map((f) => f.line)))
      .one().id;
    this.frames.set(frame, fresh.length);
    for (const { line, bytes: size } of fresh) {
      job.pending.set(line.seq, { line, frame, bytes: size, maskedBy, taken: false });
      job.pendingBytes += size;
    }
    return { fresh: inSeqOrder(fresh.map((f) => f.line)), refused };
  }

  pendingCount(jobId: string): number {
    return this.jobs().get(jobId)?.pending.size ?? 0;
  }

  /** UTF-8 bytes of a job's buffered lines. */
  pendingBytes(jobId: string): number {
    return this.jobs().get(jobId)?.pendingBytes ?? 0;
  }

  /** Buffered lines of a job that no insert in flight has taken, and their UTF-8 bytes. */
  untaken(jobId: string): { lines: number; bytes: number } {
    const job = this.jobs().get(jobId);
    return job ? { lines: job.pending.size - job.takenLines, bytes: job.pendingBytes - job.takenBytes } : { lines: 0, bytes: 0 };
  }

  totalPending(): number {
    let n = 0;
    for (const job of this.jobs().values()) n += job.pending.size;
    return n;
  }

  jobsWithPending(): string[] {
    return [...this.jobs()].filter(([, job]) => job.pending.size > 0).map(([jobId]) => jobId).sort();
  }

  /**
   * The next lines to insert for a job that no other insert has taken, in seq order: at most `maxLines`, and at most
   * `maxChars` of text (at least one line). They stay taken until markStored, or release when the insert failed.
   * Lines masked by an older masker than `masker` are masked again first (masking twice only masks more).
   */
  take(jobId: string, maxLines: number, maxChars: number, masker: MaskerGeneration): JobLogLine[] {
    const job = this.jobs().get(jobId);
    if (!job) return [];
    const out: JobLogLine[] = [];
    let chars = 0;
    for (const seq of sortedSeqs(job.pending)) {
      const entry = job.pending.get(seq)!;
      if (entry.taken) continue;
      if (entry.maskedBy !== masker.generation) {
        entry.line = { ...entry.line, line: masker.mask(entry.line.line) };
        entry.maskedBy = masker.generation;
      }
      if (out.length === maxLines || (out.length > 0 && chars + entry.line.line.length > maxChars)) break;
      chars += entry.line.line.length;
      entry.taken = true;
      job.takenLines++;
      job.takenBytes += entry.bytes;
      out.push(entry.line);
    }
    return out;
  }

  /** Lines of an insert that did not happen: another insert may take them. */
  release(jobId: string, seqs: readonly number[]): void {
    const job = this.jobs().get(jobId);
    if (!job) return;
    for (const seq of seqs) {
      const entry = job.pending.get(seq);
      if (!entry?.taken) continue;
      entry.taken = false;
      job.takenLines--;
      job.takenBytes -= entry.bytes;
    }
  }

  /** Buffered lines of a job above `afterSeq`, in seq order (what a live tail has not seen from the database). */
  pendingAfter(jobId: string, afterSeq: number): JobLogLine[] {
    const job = this.jobs().get(jobId);
    if (!job) return [];
    return sortedSeqs(job.pending)
      .filter((seq) => seq > afterSeq)
      .map((seq) => job.pending.get(seq)!.line);
  }

  /** Records that these lines are in Postgres and returns the job's new acknowledgement cursor. */
  markStored(jobId: string, seqs: readonly number[]): number {
    const job = this.job(jobId);
    const emptied: number[] = [];
    for (const seq of seqs) {
      const entry = job.pending.get(seq);
      if (!entry) continue;
      job.pending.delete(seq);
      job.pendingBytes -= entry.bytes;
      if (entry.taken) {
        job.takenLines--;
        job.takenBytes -= entry.bytes;
      }
      job.storedLines++;
      job.storedBytes += entry.bytes;
      const left = (this.frames.get(entry.frame) ?? 1) - 1;
      if (left > 0) this.frames.set(entry.frame, left);
      else {
        this.frames.delete(entry.frame);
        emptied.push(entry.frame);
      }
    }
    for (const seq of [...seqs].sort((a, b) => a - b)) {
      if (seq === job.acked + 1) job.acked = seq;
      else if (seq > job.acked) job.ahead.add(seq);
    }
    while (job.ahead.delete(job.acked + 1)) job.acked++;
    this.storage.transactionSync(() => {
      if (emptied.length > 0) this.sql.exec("DELETE FROM log_journal WHERE id IN (SELECT value FROM json_each(?))", JSON.stringify(emptied));
      this.saveJob(jobId, job);
    });
    return job.acked;
  }

  /** The job no longer exists in Postgres: its buffered lines can never be stored. Returns the highest seq dropped. */
  dropJob(jobId: string): number {
    const job = this.job(jobId);
    for (const { frame } of job.pending.values()) this.frames.delete(frame);
    job.acked = Math.max(job.acked, ...job.pending.keys(), ...job.ahead);
    job.pending.clear();
    job.pendingBytes = 0;
    job.takenLines = 0;
    job.takenBytes = 0;
    job.ahead.clear();
    this.storage.transactionSync(() => {
      this.sql.exec("DELETE FROM log_journal WHERE job_id = ?", jobId);
      this.saveJob(jobId, job);
    });
    return job.acked;
  }

  private saveJob(jobId: string, job: JobLog): void {
    this.sql.exec(
      `INSERT INTO log_jobs (job_id, acked_seq, stored_lines, stored_bytes) VALUES (?, ?, ?, ?)
       ON CONFLICT (job_id) DO UPDATE SET acked_seq = excluded.acked_seq, stored_lines = excluded.stored_lines, stored_bytes = excluded.stored_bytes`,
      jobId,
      job.acked,
      job.storedLines,
      job.storedBytes,
    );
  }

  private job(jobId: string): JobLog {
    const jobs = this.jobs();
    let job = jobs.get(jobId);
    if (!job) jobs.set(jobId, (job = emptyJob(0, 0, 0)));
    return job;
  }

  /** The in-memory state, read back from storage on the first use after a wake. */
  private jobs(): Map<string, JobLog> {
    if (this.state) return this.state;
    const jobs = new Map<string, JobLog>();
    for (const row of this.sql.exec<{ job_id: string; acked_seq: number; stored_lines: number; stored_bytes: number }>("SELECT * FROM log_jobs")) {
      jobs.set(row.job_id, emptyJob(row.acked_seq, row.stored_lines, row.stored_bytes));
    }
    const spent: number[] = [];
    for (const row of this.sql.exec<{ id: number; job_id: string; lines: string }>("SELECT id, job_id, lines FROM log_journal ORDER BY id")) {
      let job = jobs.get(row.job_id);
      if (!job) jobs.set(row.job_id, (job = emptyJob(0, 0, 0)));
      let kept = 0;
      for (const line of JSON.parse(row.lines) as JobLogLine[]) {
        if (line.seq <= job.acked || job.pending.has(line.seq)) continue;
        const bytes = utf8Length(line.line);
        job.pending.set(line.seq, { line, frame: row.id, bytes, maskedBy: -1, taken: false });
        job.pendingBytes += bytes;
        kept++;
      }
      if (kept > 0) this.frames.set(row.id, kept);
      else spent.push(row.id);
    }
    if (spent.length > 0) this.sql.exec("DELETE FROM log_journal WHERE id IN (SELECT value FROM json_each(?))", JSON.stringify(spent));
    this.state = jobs;
    return jobs;
  }
}

function emptyJob(acked: number, storedLines: number, storedBytes: number): JobLog {
  return { acked, storedLines, storedBytes, pending: new Map(), pendingBytes: 0, takenLines: 0, takenBytes: 0, ahead: new Set() };
}

function sortedSeqs(pending: Map<number, PendingLine>): number[] {
  return [...pending.keys()].sort((a, b) => a - b);
}

function inSeqOrder(lines: JobLogLine[]): JobLogLine[] {
  for (let i = 1; i < lines.length; i++) if (lines[i]!.seq < lines[i - 1]!.seq) return lines.sort((a, b) => a.seq - b.seq);
  return lines;
}
