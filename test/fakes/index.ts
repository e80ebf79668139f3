import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { awsFake } from "./aws.ts";
import { digitalOceanFake } from "./digitalocean.ts";
import { githubFake } from "../../scripts/local-github/github.ts";
import { hetznerFake } from "./hetzner.ts";
import { localCloudFake } from "./local-cloud.ts";

/**
 * Fake external services (GitHub, clouds) as real local HTTP servers, started once in Node by the global setup.
 * Each checks requests the way the real service does and answers with the real service's documented shapes.
 * Tests inside workerd reach them at the URLs in the TEST_FAKE_URLS binding (see test/fakes/urls.ts).
 */
export interface FakeService {
  name: string;
  start(): Promise<Server>;
}

const services: FakeService[] = [githubFake, awsFake, digitalOceanFake, hetznerFake, localCloudFake];

export async function startFakes(): Promise<{ urls: Record<string, string>; stop(): Promise<void> }> {
  const servers: Server[] = [];
  const urls: Record<string, string> = {};
  for (const service of services) {
    const server = await service.start();
    servers.push(server);
    urls[service.name] = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }
  return {
    urls,
    async stop() {
      for (const server of servers) {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    },
  };
}
