import { describe, expect, it } from "vitest";
import { isWranglerNoise } from "./dev-output.ts";

// Lines wrangler dev 4.156 printed on this machine at a start and while `npm run demo` ran.
const noise = [
  " ⛅️ wrangler 4.156.2",
  "────────────────────",
  "[custom build] [build:assets] 5 file(s) in build/assets (770 ms)",
  "Using secrets defined in .stagely/wrangler.vars",
  "Your Worker has access to the following bindings:",
  "Binding                                                Resource                  Mode",
  "env.AGENTS (AgentConnection)                           Durable Object            local",
  'env.ENCRYPTION_KEY ("(hidden)")                        Environment Variable      local',
  "[wrangler:warn] Unable to fetch the `Request.cf` object! Falling back to a default placeholder...",
  "Error: getaddrinfo EAI_AGAIN workers.cloudflare.com",
  "Error: getaddrinfo ENOTFOUND workers.cloudflare.com",
  "    at GetAddrInfoReqWrap.onlookupall [as oncomplete] (node:dns:123:26)",
  "▲ [WARNING] The type definitions of your Worker's environment might be out of date: run `wrangler types`",
  "⎔ Starting local server...",
  "[wrangler:info] Ready on http://127.0.0.1:18787",
  "[wrangler:info] GET /v1/projects/prj_vpivyx8ixrgiborf/environments 200 OK (65ms)",
  "[wrangler:info] QUEUE stagely-jobs 1/1 (617ms)",
  '{"time":"2026-12-06T05:46:36.373Z","level":"info","msg":"request","request_id":"req_ff42","method":"GET","path":"/v1/projects/prj_x/environments","status":200,"duration_ms":33}',
];
const shown = [
  "[custom build] npm error Missing script: build:assets",
  "✘ [ERROR] Build failed with 1 error:",
  '{"time":"2026-12-06T05:46:35.198Z","level":"info","msg":"request","request_id":"req_e976","method":"POST","path":"/v1/webhooks/github","status":202,"duration_ms":20}',
  '{"time":"2026-12-06T05:46:35.198Z","level":"info","msg":"request","request_id":"req_e977","method":"GET","path":"/v1/me","status":401,"duration_ms":2}',
  '{"time":"2026-12-06T05:46:35.198Z","level":"error","msg":"queue message failed","error":"boom"}',
  "Error: listen EADDRINUSE: address already in use 127.0.0.1:8787",
];

describe("npm run dev's filter of wrangler's output", () => {
  it.each(noise)("hides %s", (line) => expect(isWranglerNoise(line)).toBe(true));
  it.each(shown)("shows %s", (line) => expect(isWranglerNoise(line)).toBe(false));
});
