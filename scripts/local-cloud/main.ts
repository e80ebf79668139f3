// node scripts/local-cloud/main.ts [--port 5489] [--boot-delay 1500] [--no-agents]
// The local cloud on its own: the `local` provider type's simulated VMs (npm run dev can start it for you).
import { parseArgs } from "node:util";
import { LOCAL_CLOUD_DEFAULT_PORT } from "../../src/providers/local.ts";
import { startLocalCloud } from "./server.ts";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: String(LOCAL_CLOUD_DEFAULT_PORT) },
    "boot-delay": { type: "string", default: "1500" },
    "no-agents": { type: "boolean", default: false },
  },
});
const port = Number(values.port);
const bootDelayMs = Number(values["boot-delay"]);
if (!Number.isInteger(port) || !Number.isInteger(bootDelayMs) || bootDelayMs < 0) {
  console.error("--port and --boot-delay must be whole numbers");
  process.exit(1);
}
const cloud = await startLocalCloud({
  port,
  bootDelayMs,
  startAgent: values["no-agents"] ? false : undefined,
  log: (line) => console.log(`[local-cloud] ${line}`),
});
console.log(`[local-cloud] listening on ${cloud.url} (boot delay ${bootDelayMs} ms${values["no-agents"] ? ", no agents" : ""})`);
const stop = async () => {
  await cloud.stop();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
