import * as z from "zod";

/**
 * The agent VMs run: one bundled file built from agent/ (scripts/build/agent-bundle.ts) into the Worker's static
 * assets, next to a manifest with its version and SHA-256. The Worker serves the file to VMs and puts the SHA-256
 * into their cloud-init, which refuses any other file.
 */
export const AGENT_BUNDLE_ASSET = "/agent/stagely-agent.mjs";
export const AGENT_MANIFEST_ASSET = "/agent/manifest.json";
/** Where VMs download the agent: `<PUBLIC_URL><AGENT_DOWNLOAD_PATH>`. */
export const AGENT_DOWNLOAD_PATH = "/v1/agent/stagely-agent.mjs";

const agentManifestSchema = z.object({
  version: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number().int().positive(),
});
export type AgentManifest = z.infer<typeof agentManifestSchema>;

/** Assets are addressed by path; the host is not looked at. */
export const assetRequest = (path: string) => new Request(`https://assets.invalid${path}`);

const manifests = new WeakMap<object, Promise<AgentManifest>>();

/** The manifest of the agent bundle this Worker serves, read once per isolate (a failure is not cached). */
export function agentRelease(env: Env): Promise<AgentManifest> {
  let manifest = manifests.get(env);
  if (!manifest) {
    manifest = (async () => {
      const response = await env.ASSETS.fetch(assetRequest(AGENT_MANIFEST_ASSET));
      if (!response.ok) throw new Error(`the agent bundle is missing from the Worker's assets (${AGENT_MANIFEST_ASSET}: ${response.status}); run npm run build:assets`);
      return agentManifestSchema.parse(await response.json());
    })();
    manifests.set(env, manifest);
    manifest.catch(() => manifests.delete(env));
  }
  return manifest;
}
