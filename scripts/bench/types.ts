import type { Stack } from "../lib/stack.ts";

export interface BenchContext {
  target: Stack;
  total: number;
  concurrency: number;
  log: (line: string) => void;
}

/** One benchmark: drives the running target and returns table rows (latency, throughput, round trips, ...). */
export interface BenchScenario {
  name: string;
  run(context: BenchContext): Promise<Record<string, unknown>[]>;
}
