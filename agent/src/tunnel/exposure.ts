// Which {service, port} targets a preview tunnel may reach: only those the environment's last DEPLOY exposed
// (stagely.yaml `preview.expose` and `preview.routes`), never an address a request names. Shared by the real agent
// (targets → the compose service's published port) and the simulator (targets → its built-in test app).
import type { PreviewExposure } from "../../../src/agents/protocol.ts";
import type { ResolveTarget, TunnelTarget, Upstream } from "./tunnel.ts";

/** True when the exposure names exactly this service and container port. */
export function isExposed(exposure: PreviewExposure | null, target: TunnelTarget): boolean {
  if (!exposure) return false;
  const exposed = [...(exposure.expose ? [exposure.expose] : []), ...(exposure.routes ?? [])];
  return exposed.some((e) => e.service === target.service && e.port === target.port);
}

/**
 * A tunnel resolver that refuses (null) every target the current exposure does not name and asks `upstreamFor`
 * for the rest. `exposure` is read on every request, so a redeploy that changes `preview.expose` applies at once.
 */
export function exposedResolver(
  exposure: () => PreviewExposure | null,
  upstreamFor: (target: TunnelTarget) => Upstream | null | Promise<Upstream | null>,
): ResolveTarget {
  return (target) => (isExposed(exposure(), target) ? upstreamFor(target) : null);
}
