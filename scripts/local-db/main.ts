// npm run db:server [-- --backend pglite|postgres] [--port 5488] [--data-dir .stagely/pglite] [--postgres-url URL]
// The local Neon-protocol database server on its own (npm run dev starts it for you).
import { join } from "node:path";
import { parseArgs } from "node:util";
import { LOCAL_DB_DEFAULT_PORT } from "../../src/db/client.ts";
import { startLocalDatabase, type BackendKind } from "./index.ts";

const { values } = parseArgs({
  options: {
    backend: { type: "string", default: "pglite" },
    port: { type: "string", default: String(LOCAL_DB_DEFAULT_PORT) },
    "data-dir": { type: "string", default: join(import.meta.dirname, "..", "..", ".stagely", "pglite") },
    "postgres-url": { type: "string" },
  },
});
if (values.backend !== "pglite" && values.backend !== "postgres") {
  console.error(`--backend must be pglite or postgres, not "${values.backend}"`);
  process.exit(1);
}
const local = await startLocalDatabase({
  backend: values.backend as BackendKind,
  port: Number(values.port),
  dataDir: values["data-dir"],
  postgresUrl: values["postgres-url"],
  onError: (error) => console.error("internal error:", error),
});
console.log(`Neon protocol on ${local.server.url}/sql (${values.backend}); DATABASE_URL=${local.databaseUrl("stagely")}`);
const stop = async () => {
  await local.stop();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
