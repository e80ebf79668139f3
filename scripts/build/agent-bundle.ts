import { createHash } from "node:crypto";
import { join } from "node:path";
import { build } from "esbuild";
import { AGENT_VERSION } from "../../agent/src/version.ts";
import { AGENT_BUNDLE_ASSET, AGENT_MANIFEST_ASSET, type AgentManifest } from "../../src/agents/agent-release.ts";
import type { AssetBuilder } from "./assets.ts";

const entry = join(import.meta.dirname, "..", "..", "agent", "src", "main.ts");

/** The agent as one ES module for Node 24 (what VMs download) and its manifest (version, SHA-256, size). */
export const agentBundle: AssetBuilder = {
  name: "agent",
  async build(write) {
    const result = await build({
      entryPoints: [entry],
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node24",
      minify: true,
      legalComments: "none",
      write: false,
      logLevel: "silent",
      // Dependencies published as CommonJS for Node (yaml) require Node's built-ins.
      banner: {
        js: `// Stagely agent ${AGENT_VERSION} (bundled from agent/src/main.ts)\nimport { createRequire } from "node:module";\nconst require = createRequire(import.meta.url);`,
      },
    });
    const bundle = result.outputFiles[0]!.contents;
    const manifest: AgentManifest = {
      version: AGENT_VERSION,
      sha256: createHash("sha256").update(bundle).digest("hex"),
      bytes: bundle.byteLength,
    };
    await write(AGENT_BUNDLE_ASSET, bundle);
    await write(AGENT_MANIFEST_ASSET, `${JSON.stringify(manifest, null, 2)}\n`);
    return [AGENT_BUNDLE_ASSET.slice(1), AGENT_MANIFEST_ASSET.slice(1)];
  },
};
