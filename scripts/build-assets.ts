// npm run build:assets: writes the Worker's static assets into build/assets (wrangler.toml [assets], binding ASSETS).
// wrangler dev and wrangler deploy run it first ([build] in wrangler.toml); vitest.config.ts runs it before the tests.
import { buildAssets } from "./build/assets.ts";

const started = Date.now();
const written = await buildAssets();
console.log(`[build:assets] ${written.length} file(s) in build/assets (${Date.now() - started} ms)`);
