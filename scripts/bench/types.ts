import type { BenchTarget } from "./harness.ts";

export interface BenchContext {
  target: BenchTarget;
  total: number;
  concurrency: number;
  log: (line: string) => void;
}

/** One benchmark: drives the running target and returns table rows (latency, throughput, round trips, ...). */
export interface BenchScenario {
  name: string;
  run(context: BenchContext): Promise<Record<string, unknown>[]>;
}
