import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultTestBackend } from "../../scripts/local-db/index.ts";
import { startStack, type Stack } from "../../scripts/lib/stack.ts";

// The stack the other system tests and the benchmarks stand on: wrangler dev wired to a local database, the fake
// GitHub App and the local cloud, reachable from other processes.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ backend: defaultTestBackend(), log: () => {} });
}, 120_000);
afterAll(() => stack?.stop());

describe("the local stack", () => {
  it("serves the Worker on a port of its own, with its database and fakes reachable", async () => {
    const ready = await fetch(`${stack.apiUrl}/ready`);
    expect(ready.status).toBe(200);
    expect((await fetch(`${stack.githubUrl}/app`)).status).toBe(401);
    expect((await fetch(`${stack.localCloudUrl}/v1/health`)).status).toBe(200);
    const before = (await stack.dbStats()).round_trips;
    await fetch(`${stack.apiUrl}/ready`);
    expect((await stack.dbStats()).round_trips).toBe(before + 1);
  });
});
