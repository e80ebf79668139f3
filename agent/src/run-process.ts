import { spawn } from "node:child_process";
import { StringDecoder } from "node:string_decoder";
import type { Readable } from "node:stream";

export interface RunOptions {
  cwd?: string;
  /** Added to the agent's environment (values never appear in the process list, unlike arguments). */
  env?: Record<string, string>;
  /** Written to stdin, which is then closed (passwords go this way, never as arguments). */
  input?: string;
  /** Every output line, without its newline. */
  onLine?: (stream: "stdout" | "stderr", line: string) => void;
  /** Awaited after each chunk of output before reading more: the job's log buffer pushes back on a noisy process. */
  backpressure?: () => Promise<void>;
  /** Killed (SIGTERM, then SIGKILL after 5 s) when this aborts. */
  signal?: AbortSignal;
  /** Keep stdout in the result (for short outputs such as `docker version`). */
  captureStdout?: boolean;
}

export interface RunResult {
  /** Exit code, or null when a signal ended it. */
  code: number | null;
  /** True when `signal` aborted the process. */
  aborted: boolean;
  stdout: string;
  /** The last lines of stderr (at most 50), for error messages. */
  stderrTail: string[];
}

const KILL_AFTER_MS = 5_000;
const STDERR_TAIL_LINES = 50;
const MAX_CAPTURE_CHARS = 4 * 2 ** 20;

/** Splits a byte stream into UTF-8 lines across chunk boundaries; a lone `\r` (progress output) keeps its last segment. */
function lineReader(emit: (line: string) => void) {
  const decoder = new StringDecoder("utf8");
  let partial = "";
  const clean = (line: string) => {
    const text = line.endsWith("\r") ? line.slice(0, -1) : line;
    const at = text.lastIndexOf("\r");
    return at === -1 ? text : text.slice(at + 1);
  };
  return {
    push(chunk: Buffer) {
      const lines = (partial + decoder.write(chunk)).split("\n");
      partial = lines.pop()!;
      for (const line of lines) emit(clean(line));
    },
    end() {
      const rest = partial + decoder.end();
      partial = "";
      if (rest.length > 0) emit(clean(rest));
    },
  };
}

/**
 * Runs a program (no shell) and streams its output line by line. Never throws for a failing program: the exit code
 * and stderr's tail are in the result; a program that cannot start at all (not installed) rejects.
 */
export function runProcess(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) return resolve({ code: null, aborted: true, stdout: "", stderrTail: [] });
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    const stderrTail: string[] = [];
    let aborted = false;
    let killTimer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = () => {
      aborted = true;
      child.kill("SIGTERM");
      killTimer = setTimeout(() => child.kill("SIGKILL"), KILL_AFTER_MS);
    };
    options.signal?.addEventListener("abort", onAbort, { once: true });

    const read = (stream: Readable, name: "stdout" | "stderr") => {
      const reader = lineReader((line) => {
        if (name === "stderr") {
          stderrTail.push(line);
          if (stderrTail.length > STDERR_TAIL_LINES) stderrTail.shift();
        }
        options.onLine?.(name, line);
      });
      stream.on("data", (chunk: Buffer) => {
        if (name === "stdout" && options.captureStdout && stdout.length < MAX_CAPTURE_CHARS) stdout += chunk.toString("utf8");
        reader.push(chunk);
        if (options.backpressure) {
          stream.pause();
          options.backpressure().then(
            () => stream.resume(),
            () => stream.resume(),
          );
        }
      });
      stream.on("end", () => reader.end());
    };
    read(child.stdout, "stdout");
    read(child.stderr, "stderr");
    child.on("error", (error) => {
      options.signal?.removeEventListener("abort", onAbort);
      clearTimeout(killTimer);
      reject(new Error(`could not run ${command}: ${error.message}`));
    });
    // After the process exited and its output streams ended.
    child.on("close", (code) => {
      clearTimeout(killTimer);
      options.signal?.removeEventListener("abort", onAbort);
      resolve({ code, aborted, stdout, stderrTail });
    });
    child.stdin.on("error", () => {
      // The program exited without reading its input.
    });
    child.stdin.end(options.input ?? "");
  });
}
