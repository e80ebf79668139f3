import { describe, expect, it } from "vitest";
import { call, seedUser } from "../../test/harness.ts";

describe("mutation rate limit", () => {
  it("answers 429 with Retry-After once a token makes too many changes, without limiting reads or other tokens", async () => {
    const busy = await seedUser();
    const statuses: number[] = [];
    for (let i = 0; i < 130; i++) {
      statuses.push((await call("POST", "/v1/tokens", { token: busy.token, body: { name: `t${i}` } })).status);
    }
    expect(statuses.slice(0, 120).every((s) => s === 201)).toBe(true);
    const limited = await call("POST", "/v1/tokens", { token: busy.token, body: { name: "one more" } });
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("60");
    expect(limited.body.error.code).toBe("RATE_LIMITED");
    expect((await call("GET", "/v1/me", { token: busy.token })).status).toBe(200);
    const calm = await seedUser();
    expect((await call("POST", "/v1/tokens", { token: calm.token, body: { name: "fine" } })).status).toBe(201);
  });
});
