import type { BenchScenario } from "../types.ts";
import { runLoad } from "../load.ts";

/** GET /health (no database) and GET /ready (one round trip). */
export const healthScenario: BenchScenario = {
  name: "health",
  async run({ target, total, concurrency, log }) {
    const rows = [];
    for (const path of ["/health", "/ready"]) {
      log(`GET ${path}: warming up, then ${total} requests at concurrency ${concurrency} ...`);
      await runLoad({ total: 100, concurrency, makeRequest: () => fetch(`${target.apiUrl}${path}`) });
      await target.resetDbStats();
      const result = await runLoad({ total, concurrency, makeRequest: () => fetch(`${target.apiUrl}${path}`) });
      const stats = await target.dbStats();
      rows.push({ scenario: `GET ${path}`, ...result, db_round_trips_per_request: Number((stats.round_trips / total).toFixed(2)) });
    }
    return rows;
  },
};
