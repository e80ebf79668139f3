import { parentPort, workerData } from "node:worker_threads";
import { hostileCases, runHostileCase } from "../hostile-yaml.ts";

// Runs the table of hostile documents for test/system/hostile-yaml.test.ts, in a worker thread: a fresh isolate like
// the Worker's, with a small heap. `workerData.timedRuns` 0: each case once, to see it fit under the heap cap the
// test sets (a case that needs more ends the worker with ERR_WORKER_OUT_OF_MEMORY after its "start" message).
// Otherwise each case once more and then `timedRuns` times, answering the fastest run's CPU time.

const { timedRuns } = workerData as { timedRuns: number };

function cpuMs(): number {
  const usage = process.threadCpuUsage();
  return (usage.user + usage.system) / 1000;
}

for (const hostile of hostileCases) {
  parentPort!.postMessage({ type: "start", name: hostile.name });
  const text = hostile.text();
  const outcome = runHostileCase(hostile, text);
  let fastestCpuMs = Number.POSITIVE_INFINITY;
  for (let run = 0; run < timedRuns; run++) {
    const before = cpuMs();
    runHostileCase(hostile, text);
    fastestCpuMs = Math.min(fastestCpuMs, cpuMs() - before);
  }
  parentPort!.postMessage({ type: "result", name: hostile.name, outcome, fastestCpuMs });
}
