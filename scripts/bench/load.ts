export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  rps: number;
  p50_ms: number;
  p99_ms: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Sends `total` requests made by `makeRequest`, `concurrency` at a time; bounded in count, stops by itself. */
export async function runLoad(options: {
  total: number;
  concurrency: number;
  makeRequest: (i: number) => Promise<Response>;
  expectStatus?: number;
}): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const started = performance.now();
  async function lane() {
    while (next < options.total) {
      const i = next++;
      const t0 = performance.now();
      try {
        const response = await options.makeRequest(i);
        await response.arrayBuffer();
        if (response.status !== (options.expectStatus ?? 200)) errors++;
      } catch {
        errors++;
      }
      latencies.push(performance.now() - t0);
    }
  }
  await Promise.all(Array.from({ length: options.concurrency }, lane));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    requests: options.total,
    errors,
    seconds: Number(seconds.toFixed(2)),
    rps: Math.round(options.total / seconds),
    p50_ms: Number(percentile(latencies, 50).toFixed(2)),
    p99_ms: Number(percentile(latencies, 99).toFixed(2)),
  };
}
