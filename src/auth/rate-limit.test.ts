import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, seedUser } from "../../test/harness.ts";

// wrangler.toml [[ratelimits]]: 120 mutations per user, 30 sign-in requests and 600 agent connects per client IP, per minute.

describe("mutation rate limit", () => {
  it("counts per user: more tokens buy no more changes; reads and other users are not limited", async () => {
    const busy = await seedUser();
    const minted: string[] = [];
    for (let i = 0; i < 120; i++) {
      const response = await call("POST", "/v1/tokens", { token: busy.token, body: { name: `t${i}` } });
      expect(response.status, `change ${i + 1}`).toBe(201);
      minted.push(response.body.token);
    }
    const limited = await call("POST", "/v1/tokens", { token: busy.token, body: { name: "one more" } });
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("60");
    expect(limited.body.error).toMatchObject({ code: "RATE_LIMITED", message: expect.stringContaining("this account") });
    const withFreshToken = await call("POST", "/v1/tokens", { token: minted.at(-1)!, body: { name: "from a new token" } });
    expect(withFreshToken.status).toBe(429);

    expect((await call("GET", "/v1/me", { token: minted[0] })).status).toBe(200);
    const calm = await seedUser();
    expect((await call("POST", "/v1/tokens", { token: calm.token, body: { name: "fine" } })).status).toBe(201);
  }, 60_000);
});

describe("per-IP limits on routes without a Stagely token", () => {
  const fromIp = (ip: string, path: string, init: RequestInit = {}) =>
    exports.default.fetch(new Request(`https://stagely.test${path}`, { ...init, redirect: "manual", headers: { ...init.headers, "CF-Connecting-IP": ip } }));

  it("limits GitHub sign-in per client address, start and callback together, and not webhooks", async () => {
    const ip = "203.0.113.10";
    for (let i = 0; i < 30; i++) expect((await fromIp(ip, "/v1/auth/github")).status, `sign-in ${i + 1}`).toBe(302);
    const limited = await fromIp(ip, "/v1/auth/github/callback?code=x&state=y");
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("60");
    expect(((await limited.json()) as { error: { message: string } }).error.message).toContain("from your address");
    expect((await fromIp(ip, "/v1/auth/github")).status).toBe(429);

    expect((await fromIp("203.0.113.11", "/v1/auth/github")).status).toBe(302);
    // GitHub's webhooks come from shared addresses: never limited per IP (this one fails its signature instead).
    const webhook = await fromIp(ip, "/v1/webhooks/github", { method: "POST", body: "{}", headers: { "X-GitHub-Event": "ping" } });
    expect(webhook.status).toBe(401);
  }, 60_000);

  it("limits agent connects per client address before waking any agent", async () => {
    const ip = "203.0.113.20";
    const connect = (from: string) => fromIp(from, "/v1/agent/connect", { headers: { Upgrade: "websocket", Authorization: "Bearer not-an-agent-token" } });
    const statuses = new Map<number, number>();
    for (let i = 0; i < 600; i++) {
      const status = (await connect(ip)).status;
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
    expect(Object.fromEntries(statuses)).toEqual({ 401: 600 });
    const limited = await connect(ip);
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("60");
    expect((await connect("203.0.113.21")).status).toBe(401);
  }, 60_000);
});
