/** The Durable Object of a preview host (named by its environment's subdomain hash). */
export function previewHostStub(env: Env, subdomainHash: string) {
  return env.PREVIEW_HOSTS.get(env.PREVIEW_HOSTS.idFromName(subdomainHash));
}

/** The Durable Object holding a preview agent's tunnel (named by the agent id). */
export function previewTunnelStub(env: Env, agentId: string) {
  return env.PREVIEW_TUNNELS.get(env.PREVIEW_TUNNELS.idFromName(agentId));
}
