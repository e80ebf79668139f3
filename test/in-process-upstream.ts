import type { Upstream } from "../agent/src/tunnel/tunnel.ts";
import { testApp, type TestApp } from "../scripts/agent-sim/test-app.ts";

/** The test app called in-process (workerd tests cannot open ports): what `resolveTarget` returns inside workerd. */
export function inProcessUpstream(app: TestApp = testApp): Upstream {
  return {
    async request({ method, path, headers, body, signal }) {
      const response = await app.fetch(new Request(`http://app${path}`, { method, headers, body, signal }));
      return { status: response.status, headers: [...response.headers], body: response.body };
    },
    async webSocket({ protocols }) {
      const pair = new WebSocketPair();
      const [client, server] = [pair[0], pair[1]];
      server.accept();
      server.binaryType = "arraybuffer";
      const protocol = app.webSocket(server, protocols);
      client.accept();
      return { socket: client, protocol };
    },
  };
}
